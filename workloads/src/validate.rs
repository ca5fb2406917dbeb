//! Validation: is every op legal given the ones before it?

use crate::idmap::IdMap;
use crate::op::Op;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Never,
    Live,
    Freed,
}

/// Follows a stream of ops and says what is wrong with the first bad one: a
/// free of an id never allocated, a double free, a realloc of a dead id, an
/// alloc of an id still live.
#[derive(Debug, Default)]
pub struct Validator {
    states: IdMap<State>,
    live: u64,
}

impl Validator {
    /// A validator that has seen nothing.
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Blocks live now.
    pub fn live_blocks(&self) -> u64 {
        self.live
    }

    /// Accept `op` or say why it is illegal; an illegal op changes nothing.
    pub fn check(&mut self, op: &Op) -> Result<(), String> {
        let id = op.id();
        let state = self.states.get(id);
        match (*op, state) {
            (Op::Alloc { .. }, State::Live) => Err(format!("alloc of id {id}, which is still live")),
            (Op::Alloc { .. }, _) => {
                self.states.set(id, State::Live);
                self.live += 1;
                Ok(())
            }
            (Op::Free { .. }, State::Live) => {
                self.states.set(id, State::Freed);
                self.live -= 1;
                Ok(())
            }
            (Op::Free { .. }, State::Never) => Err(format!("free of id {id}, which was never allocated")),
            (Op::Free { .. }, State::Freed) => Err(format!("double free of id {id}")),
            (Op::Realloc { .. }, State::Live) => Ok(()),
            (Op::Realloc { .. }, State::Never) => Err(format!("realloc of id {id}, which was never allocated")),
            (Op::Realloc { .. }, State::Freed) => Err(format!("realloc of id {id}, which was freed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Align;

    #[test]
    fn each_kind_of_misuse_is_named() {
        let alloc = |id| Op::Alloc { id, size: 8, align: Align::UNSPECIFIED };
        let mut validator = Validator::new();
        assert_eq!(validator.check(&Op::Free { id: 1 }), Err("free of id 1, which was never allocated".into()));
        assert_eq!(
            validator.check(&Op::Realloc { id: 1, size: 3 }),
            Err("realloc of id 1, which was never allocated".into())
        );
        validator.check(&alloc(1)).unwrap();
        assert_eq!(validator.check(&alloc(1)), Err("alloc of id 1, which is still live".into()));
        validator.check(&Op::Realloc { id: 1, size: 3 }).unwrap();
        validator.check(&Op::Free { id: 1 }).unwrap();
        assert_eq!(validator.check(&Op::Free { id: 1 }), Err("double free of id 1".into()));
        assert_eq!(validator.check(&Op::Realloc { id: 1, size: 3 }), Err("realloc of id 1, which was freed".into()));
        validator.check(&alloc(1)).unwrap();
        assert_eq!(validator.live_blocks(), 1);
    }
}
