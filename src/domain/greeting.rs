//! What a greeting is made from: the customer's record as the store reads it for one occasion
//! (the LLM's prompt and the templates both draw on it).

use chrono::NaiveDate;

use crate::domain::{followup::Occasion, lunar::LunarBirthday};

/// One line of a customer's consumption history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub order_number: String,
    pub item_code: String,
    pub date: NaiveDate,
    pub item_type: String,
    pub item_name: String,
    pub amount_cents: i64,
    pub doctor_name: Option<String>,
}

/// Everything a greeting may draw on.
#[derive(Debug, Clone)]
pub struct GreetingContext {
    pub institution_code: String,
    pub institution_name: String,
    /// The institution's own IANA time zone, when it is not the chain's.
    pub institution_timezone: Option<String>,
    pub full_name: String,
    pub gender: Option<String>,
    pub occasion_date: NaiveDate,
    /// Set when the customer keeps a lunar birthday; `occasion_date` is the day it falls on.
    pub lunar_birthday: Option<LunarBirthday>,
    /// What the message is for (the store reads a birthday; the handler sets the revisit's).
    pub occasion: Occasion,
    /// The treatment a check-in or maintenance reminder follows, and for a check-in the days
    /// since it.
    pub subject: Option<HistoryItem>,
    pub day_offset: Option<i32>,
    pub vip_level: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// Most recent first.
    pub history: Vec<HistoryItem>,
    /// The latest consultation records (咨询记录), most recent first.
    pub consultations: Vec<ConsultationNote>,
}

/// What a greeting may draw on from a consultation record: the day, the projects asked about,
/// and (for the LLM's reference only) what was said and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsultationNote {
    pub date: NaiveDate,
    pub projects: Vec<String>,
    pub content: Option<String>,
    pub outcome: Option<String>,
}

impl GreetingContext {
    /// `张女士`, `欧阳先生`, or `尊敬的顾客` when the name or gender is unknown.
    pub fn salutation(&self) -> String {
        let surname = crate::domain::names::surname_of(&self.full_name);
        let title = match self.gender.as_deref() {
            Some("女") => Some("女士"),
            Some("男") => Some("先生"),
            _ => None,
        };
        match (surname, title) {
            (Some(s), Some(t)) => format!("{s}{t}"),
            _ => "尊敬的顾客".to_owned(),
        }
    }

    /// The doctors who treated the customer, most recent first, without repeats.
    pub fn doctors(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in self.history.iter().filter_map(|h| h.doctor_name.as_deref()) {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// The words a greeting may take from the customer's own record: the institution, the
    /// salutation, the doctors, the treatments and products (one per line). What stands here is
    /// never another customer's name leaking into the message.
    pub fn own_words(&self) -> String {
        let mut out = vec![self.institution_name.clone(), self.salutation()];
        out.extend(self.doctors().into_iter().map(str::to_owned));
        out.extend(self.history.iter().map(|h| h.item_name.clone()));
        out.extend(self.subject.iter().map(|h| h.item_name.clone()));
        out.extend(self.consultations.iter().flat_map(|c| c.projects.clone()));
        out.join("\n")
    }

    /// The most recent treatment (a project rather than a product), if any.
    pub fn last_project(&self) -> Option<&HistoryItem> {
        self.history.iter().find(|h| h.item_type == "project")
    }
}
