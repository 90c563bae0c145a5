//! The LLM: an OpenAI-compatible chat-completions client (DeepSeek by default), the prompt
//! built from a customer's history, and the template used when no API key is configured.

pub mod client;
pub mod prompt;
pub mod template;

pub use client::{LlmClient, LlmError};

/// Cleans an LLM answer into a message: no surrounding quotes or blank lines, at most
/// `max_chars` characters, cut at the last sentence end that fits. `None` when what is left is
/// not Chinese text.
pub fn tidy_message(raw: &str, max_chars: usize) -> Option<String> {
    let mut text: String = raw
        .trim()
        .trim_matches(|c| matches!(c, '"' | '“' | '”' | '「' | '」' | '\''))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("");
    if !text.chars().any(is_cjk) {
        return None;
    }
    if text.chars().count() > max_chars {
        let cut: String = text.chars().take(max_chars).collect();
        let end = cut
            .char_indices()
            .filter(|(_, c)| matches!(c, '。' | '！' | '？' | '~' | '～'))
            .map(|(i, c)| i + c.len_utf8())
            .next_back();
        text = match end {
            Some(end) if end > cut.len() / 2 => cut[..end].to_owned(),
            _ => {
                let mut s: String = cut.chars().take(max_chars - 1).collect();
                s.push('。');
                s
            }
        };
    }
    Some(text)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_quotes_and_spaces() {
        assert_eq!(
            tidy_message("  “张女士，生日快乐！” \n", 70).unwrap(),
            "张女士，生日快乐！"
        );
    }

    #[test]
    fn cuts_at_a_sentence_end_within_the_limit() {
        let long = "张女士您好！祝您生日快乐。愿您每天都美丽自信，我们期待再次为您服务，欢迎随时来店里坐坐聊聊天喝喝茶。";
        let out = tidy_message(long, 20).unwrap();
        assert!(out.chars().count() <= 20, "{out}");
        assert!(out.ends_with('。') || out.ends_with('！'));
    }

    #[test]
    fn rejects_non_chinese() {
        assert!(tidy_message("Happy birthday!", 70).is_none());
    }
}
