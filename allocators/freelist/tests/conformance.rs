//! The shared conformance suite, over all twelve placement × order combinations.

use heaplab_freelist::{Config, Fit, Order};

macro_rules! suite {
    ($name:ident, $fit:ident, $order:ident) => {
        heaplab_core::conformance_suite!($name, config: Config { fit: Fit::$fit, order: Order::$order });
    };
}

suite!(first_lifo, First, Lifo);
suite!(first_fifo, First, Fifo);
suite!(first_address, First, Address);
suite!(next_lifo, Next, Lifo);
suite!(next_fifo, Next, Fifo);
suite!(next_address, Next, Address);
suite!(best_lifo, Best, Lifo);
suite!(best_fifo, Best, Fifo);
suite!(best_address, Best, Address);
suite!(worst_lifo, Worst, Lifo);
suite!(worst_fifo, Worst, Fifo);
suite!(worst_address, Worst, Address);

// The concurrent part: the layers over two of the fits.
heaplab_core::concurrent_suite!(layers_first_address, config: Config { fit: Fit::First, order: Order::Address });
heaplab_core::concurrent_suite!(layers_best_lifo, config: Config { fit: Fit::Best, order: Order::Lifo });
