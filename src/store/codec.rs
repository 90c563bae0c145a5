//! The domain's closed sets of words as column values: each is stored as its word (a `text`
//! column with a `CHECK` on PostgreSQL, TEXT on SQLite) and read back as its value, so rows carry
//! enums and only SQL holds the strings. A word the code does not know is a decode error (bad
//! data, not retried), never a silent string.

use sqlx::{Database, Decode, Encode, Type, encode::IsNull, error::BoxDynError};

use crate::domain::{
    followup::Occasion,
    revisit::{Approval, RevisitStatus, Writer},
};

macro_rules! text_column {
    ($($name:ty),+) => {$(
        impl<DB: Database> Type<DB> for $name
        where
            for<'a> &'a str: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <&str as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <&str as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $name
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let word = <&str as Decode<DB>>::decode(value)?;
                Ok(word.parse::<$name>()?)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $name
        where
            &'static str: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&'static str as Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }
    )+};
}

text_column!(RevisitStatus, Writer, Approval, Occasion);
