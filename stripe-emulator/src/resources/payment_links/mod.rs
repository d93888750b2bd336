//! Payment links: create, retrieve, update, list, line items; and the hosted page at
//! `{base}/b/:id` (the link's `url`, no key needed).
//!
//! A link sells fixed line items (stored prices and quantities; one currency; recurring
//! prices make it a subscription link). Its page shows the items and the total, and its
//! "Pay" button (`POST` to the same URL) opens a checkout session for them (with
//! `payment_link` set, `mode` payment or subscription) and redirects `303` to that session's
//! hosted page; after payment the customer lands on `after_completion[redirect][url]` or
//! back on the link's page, which then shows the confirmation. An inactive link's page
//! shows `inactive_message` and opens no session.

pub mod create;
pub mod link;
pub mod read;

pub use create::create;
pub use link::{LABEL, PAGE_PREFIX, line_items, list, list_line_items, retrieve, stored, update};
