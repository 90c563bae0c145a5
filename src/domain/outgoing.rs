//! The outgoing message: what a channel needs to deliver one revisit's message to its customer.

use serde::Serialize;

/// A message ready to go.
#[derive(Debug, Clone, Serialize)]
pub struct Outgoing {
    pub revisit_id: i64,
    /// Stable for the revisit: the receiver drops a repeat with the same key.
    pub send_key: String,
    pub institution_code: String,
    pub customer_code: String,
    pub name: String,
    pub phone: String,
    pub occasion: String,
    pub occasion_date: chrono::NaiveDate,
    pub message: String,
    /// The customer's WeCom external contact and the staff member who has them (a WeCom
    /// broadcast's recipient and sender); not posted to a webhook.
    #[serde(skip)]
    pub wecom_external_userid: Option<String>,
    #[serde(skip)]
    pub wecom_userid: Option<String>,
}
