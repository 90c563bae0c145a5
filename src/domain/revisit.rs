//! A revisit's states as values, not strings: where it is on its way to the customer, who wrote
//! its message, and whether staff approved it. The words stored in the database (and sent in
//! JSON) are each value's [`as_str`](RevisitStatus::as_str); staff read its `label`.

/// Display, JSON and `FromStr` of a closed set of words, from its `as_str` and `parse`.
macro_rules! word_traits {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(word: &str) -> Result<Self, String> {
                Self::parse(word).ok_or_else(|| format!("{word:?} is not a {}", stringify!($name)))
            }
        }
    };
}

pub(crate) use word_traits;

/// Defines a closed set of words with its Chinese labels, parsing, and serialisation as the word.
macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal, $label:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word stored in the database and sent in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// What staff read.
            pub fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }

            pub fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        word_traits!($name);
    };
}

words! {
    /// Where a revisit is on its way to the customer.
    RevisitStatus {
        /// Created by a scan; its message is being written.
        Pending = "pending", "待生成";
        /// Its message is written; its sending is queued (or waits for approval).
        Generated = "generated", "待发送";
        /// A delivery try holds it (the send claim).
        Sending = "sending", "发送中";
        /// The channel made a task a staff member must confirm (a WeCom broadcast).
        Submitted = "submitted", "待员工确认";
        Sent = "sent", "已发送";
        Failed = "failed", "失败";
        /// Not sent on purpose (opted out, unsubscribed, rejected by staff, sending off).
        Skipped = "skipped", "已跳过";
    }
}

words! {
    /// Who wrote a revisit's message.
    Writer {
        Llm = "llm", "大模型";
        Template = "template", "模板";
    }
}

words! {
    /// Staff's approval of a real message, where the institution asks for one.
    Approval {
        Pending = "pending", "待审核";
        Approved = "approved", "已通过";
        Rejected = "rejected", "已驳回";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_value() {
        for s in RevisitStatus::ALL {
            assert_eq!(RevisitStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for w in Writer::ALL {
            assert_eq!(w.as_str().parse::<Writer>(), Ok(*w));
        }
        for a in Approval::ALL {
            assert_eq!(Approval::parse(a.as_str()), Some(*a));
        }
        assert_eq!(RevisitStatus::parse("delivered"), None);
    }
}
