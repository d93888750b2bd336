//! Calls the service makes to addresses a tenant gave it: the egress rules every such call
//! passes (public https addresses only), and the notifications sent to a tenant's app.

pub mod egress;
pub mod notifications;
