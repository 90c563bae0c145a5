//! What a greeting's prompt may carry to the LLM, a third party unless the chain runs the
//! model itself. By default only what a greeting needs and is not sensitive: the salutation
//! (family name and title), the occasion and its day, the institution, and the names of the
//! treatments and products with their doctors. Staff's tags and notes, consultation records and
//! the dates of treatments may hold medical history (过敏史, 敏感肌), which the Personal
//! Information Protection Law counts as sensitive personal information (Art. 28): processing it
//! needs separate consent (Art. 29), and handing it to another processor needs the person told
//! and, again, separate consent (Art. 23). An institution that has those consents, or runs the
//! model on its own server, shares more by its own explicit setting (`llm.share` per
//! institution; docs/threat-model.md).

use serde::Deserialize;

/// One kind of data a prompt may carry beyond the salutation, occasion and institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// The names of treatments and products, with their doctors (no dates).
    Treatments,
    /// The dates of treatments and consultations.
    Dates,
    /// The membership level.
    VipLevel,
    /// Staff's tags (may name skin or health conditions).
    Tags,
    /// Staff's service notes (may hold medical history).
    Notes,
    /// Consultation records: the projects asked about, how it ended, the latest note.
    Consultations,
}

impl Share {
    pub const ALL: [Share; 6] = [
        Share::Treatments,
        Share::Dates,
        Share::VipLevel,
        Share::Tags,
        Share::Notes,
        Share::Consultations,
    ];

    /// Whether the law counts it as sensitive personal information (health), so that sharing
    /// it needs the customer's separate consent.
    pub fn is_sensitive(self) -> bool {
        matches!(
            self,
            Share::Dates | Share::Tags | Share::Notes | Share::Consultations
        )
    }
}

/// The kinds of data one institution's prompts carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing(Vec<Share>);

impl Sharing {
    pub fn of(shares: &[Share]) -> Self {
        let mut v = shares.to_vec();
        v.dedup();
        Self(v)
    }

    /// The default: treatment names with their doctors, nothing sensitive.
    pub fn default_for_llm() -> Self {
        Self(vec![Share::Treatments])
    }

    pub fn allows(&self, share: Share) -> bool {
        self.0.contains(&share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shares_nothing_sensitive() {
        let d = Sharing::default_for_llm();
        assert!(
            Share::ALL
                .iter()
                .all(|s| !d.allows(*s) || !s.is_sensitive())
        );
        assert!(d.allows(Share::Treatments));
    }
}
