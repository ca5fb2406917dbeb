//! The concurrent conformance suite catches a layer that loses remote frees.

use std::alloc::Layout;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Mutex;

use heaplab_core::concurrent::{AnyLayer, AnyLocal, Layer, LayerKind, SharedAllocator};
use heaplab_core::conformance::{self as suite, Check, ConcurrentOps};
use heaplab_core::{AllocError, AllocatorConfig, Arena, InvariantViolation};
use heaplab_segregated::Config;

type Inner = <Config as AllocatorConfig>::Allocator;

/// The locked layer, except that a free by another thread than the
/// allocating one is dropped on the floor.
struct LosesRemoteFrees {
    layer: AnyLayer<Inner>,
    allocated_by: Mutex<HashMap<usize, usize>>,
}

impl SharedAllocator for LosesRemoteFrees {
    type Local = (usize, AnyLocal);

    fn local(&self, thread: usize) -> Self::Local {
        (thread, self.layer.local(thread))
    }

    fn alloc(&self, local: &mut Self::Local, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.layer.alloc(&mut local.1, layout)?;
        self.allocated_by.lock().unwrap().insert(ptr.as_ptr() as usize, local.0);
        Ok(ptr)
    }

    unsafe fn free(&self, local: &mut Self::Local, ptr: NonNull<u8>, layout: Layout) {
        let by = self.allocated_by.lock().unwrap().remove(&(ptr.as_ptr() as usize));
        if by == Some(local.0) {
            // SAFETY: forwarded from the caller.
            unsafe { self.layer.free(&mut local.1, ptr, layout) };
        }
    }

    fn retire(&self, local: Self::Local) {
        self.layer.retire(local.1);
    }

    fn into_arena(self) -> Arena {
        self.layer.into_arena()
    }
}

impl Layer for LosesRemoteFrees {
    type Inner = Inner;

    fn inner_layout(&self, layout: Layout) -> Layout {
        self.layer.inner_layout(layout)
    }

    fn inner_mut(&mut self) -> &mut Inner {
        self.layer.inner_mut()
    }

    unsafe fn inner_unshared(&self) -> &Inner {
        // SAFETY: forwarded from the caller.
        unsafe { self.layer.inner_unshared() }
    }

    fn flush(&mut self, _locals: &mut [Self::Local]) {
        self.layer.flush(&mut []);
    }

    fn check_layer(&self, _locals: &[Self::Local]) -> Result<(), InvariantViolation> {
        Ok(())
    }

    fn into_inner(self) -> Inner {
        self.layer.into_inner()
    }
}

#[test]
fn a_lost_remote_free_fails_recovery() {
    let make = |arena, threads| {
        let inner = Config::Tlsf { sl_bits: 5 }.build(arena).unwrap();
        LosesRemoteFrees { layer: LayerKind::Locked.build(inner, threads).unwrap(), allocated_by: Mutex::default() }
    };
    let plan = ConcurrentOps { threads: 2, ops_per_thread: 5_000, ..ConcurrentOps::standard() };
    let failure = suite::concurrent_ops(make, &plan).expect_err("a layer that loses remote frees must fail");
    assert_eq!(failure.check, Check::Recovery, "{failure}");
    assert!(failure.to_string().contains("live blocks"), "{failure}");
}

#[test]
fn the_same_layer_without_the_fault_passes() {
    let make = |arena, threads| {
        let inner = Config::Tlsf { sl_bits: 5 }.build(arena).unwrap();
        LayerKind::Locked.build(inner, threads).unwrap()
    };
    let plan = ConcurrentOps { threads: 2, ops_per_thread: 5_000, ..ConcurrentOps::standard() };
    suite::concurrent_ops(make, &plan).unwrap();
}
