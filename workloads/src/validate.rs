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

/// An op that is illegal after the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Misuse {
    /// An alloc of an id still live.
    #[error("alloc of id {0}, which is still live")]
    AllocOfLive(u32),
    /// A free of an id never allocated.
    #[error("free of id {0}, which was never allocated")]
    FreeOfUnknown(u32),
    /// A second free.
    #[error("double free of id {0}")]
    DoubleFree(u32),
    /// A realloc of an id never allocated.
    #[error("realloc of id {0}, which was never allocated")]
    ReallocOfUnknown(u32),
    /// A realloc of a freed id.
    #[error("realloc of id {0}, which was freed")]
    ReallocOfFreed(u32),
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
    pub fn check(&mut self, op: &Op) -> Result<(), Misuse> {
        let id = op.id();
        let state = self.states.get(id);
        match (*op, state) {
            (Op::Alloc { .. }, State::Live) => Err(Misuse::AllocOfLive(id)),
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
            (Op::Free { .. }, State::Never) => Err(Misuse::FreeOfUnknown(id)),
            (Op::Free { .. }, State::Freed) => Err(Misuse::DoubleFree(id)),
            (Op::Realloc { .. }, State::Live) => Ok(()),
            (Op::Realloc { .. }, State::Never) => Err(Misuse::ReallocOfUnknown(id)),
            (Op::Realloc { .. }, State::Freed) => Err(Misuse::ReallocOfFreed(id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Align;

    #[test]
    fn each_kind_of_misuse_is_named() {
        let alloc = |id| Op::alloc(id, 8, Align::UNSPECIFIED);
        let mut validator = Validator::new();
        assert_eq!(validator.check(&Op::Free { id: 1 }), Err(Misuse::FreeOfUnknown(1)));
        assert_eq!(Misuse::FreeOfUnknown(1).to_string(), "free of id 1, which was never allocated");
        assert_eq!(validator.check(&Op::Realloc { id: 1, size: 3 }), Err(Misuse::ReallocOfUnknown(1)));
        validator.check(&alloc(1)).unwrap();
        assert_eq!(validator.check(&alloc(1)), Err(Misuse::AllocOfLive(1)));
        validator.check(&Op::Realloc { id: 1, size: 3 }).unwrap();
        validator.check(&Op::Free { id: 1 }).unwrap();
        assert_eq!(validator.check(&Op::Free { id: 1 }), Err(Misuse::DoubleFree(1)));
        assert_eq!(validator.check(&Op::Realloc { id: 1, size: 3 }), Err(Misuse::ReallocOfFreed(1)));
        validator.check(&alloc(1)).unwrap();
        assert_eq!(validator.live_blocks(), 1);
    }
}
