//! The hosted pages Stripe would show a customer, standing in offline: the billing portal,
//! checkout and payment links. They need no key; each finds the key and account whose
//! store holds its object, and acts as the page's visitor would.

pub mod checkout;
pub mod oauth;
pub mod payment_link;
pub mod portal;
