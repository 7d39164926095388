-- Back to the scratch connection's default after the one pass (order_free.sql).
RESET preserve_insertion_order;
