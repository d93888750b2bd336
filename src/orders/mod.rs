//! Orders below the use cases: an order's terms and their checks (`terms`), and fetching an
//! order the tenant's backend holds (`lookup`). The use case that records and pays orders is
//! `services::orders`.

pub mod lookup;
pub mod terms;
