//! The greeting used when no LLM is configured: the same facts, in fixed sentences.

use super::{prompt::GreetingContext, tidy_message};

/// The richest template that fits in `max_chars`.
pub fn birthday_greeting(ctx: &GreetingContext, max_chars: usize) -> String {
    let who = ctx.salutation();
    let inst = &ctx.institution_name;
    let mut candidates = Vec::new();
    if let (Some(project), Some(doctor)) = (ctx.last_project(), ctx.doctors().first()) {
        candidates.push(format!(
            "{who}，{inst}祝您生日快乐！{doctor}医生还记挂着您上次的{item}，期待再次为您服务。",
            item = project.item_name
        ));
    }
    if let Some(project) = ctx.last_project() {
        candidates.push(format!(
            "{who}，{inst}祝您生日快乐！上次的{item}感觉如何？期待再次为您服务。",
            item = project.item_name
        ));
    }
    candidates.push(format!(
        "{who}，{inst}祝您生日快乐！感谢您一直以来的信任与陪伴。"
    ));
    candidates.push(format!("{who}，祝您生日快乐，愿您美丽常在！"));
    candidates
        .into_iter()
        .find(|c| c.chars().count() <= max_chars)
        .or_else(|| tidy_message(&format!("{who}，祝您生日快乐！"), max_chars))
        .unwrap_or_else(|| "生日快乐！".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::prompt::tests::sample;

    #[test]
    fn remembers_the_treatment_and_the_doctor() {
        let g = birthday_greeting(&sample(), 70);
        assert!(
            g.contains("张女士") && g.contains("李明医生") && g.contains("水光针"),
            "{g}"
        );
        assert!(g.chars().count() <= 70);
    }

    #[test]
    fn always_fits() {
        for max in [10, 20, 30, 70] {
            let g = birthday_greeting(&sample(), max);
            assert!(g.chars().count() <= max, "{max}: {g}");
        }
    }
}
