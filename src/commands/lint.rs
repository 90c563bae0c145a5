//! `revisit lint "<text>"`: the compliance check's verdict on a message, as every greeting gets
//! it before it is saved for sending.

use crate::{
    config::Settings,
    domain::compliance::{self, Limits},
};

pub fn lint(settings: &Settings, text: &str, institution: Option<&str>) -> anyhow::Result<()> {
    let limits = Limits {
        max_chars: settings.reminders.max_message_chars,
        allow_prices: institution
            .is_some_and(|code| settings.compliance.allow_prices.iter().any(|c| c == code)),
    };
    let violations = compliance::check(text, limits);
    if violations.is_empty() {
        println!("✅ 通过合规检查（{} 字）", text.chars().count());
        return Ok(());
    }
    println!("❌ 未通过合规检查：");
    for v in &violations {
        println!("   {}", v.describe());
    }
    anyhow::bail!("这条消息有 {} 处未通过合规检查", violations.len())
}
