//! Queries built at run time (the embedded store's `filter.rs`, in PostgreSQL's SQL).
