//! Greeting generation: LLM retries with Retry-After, the template without a key, and what the
//! prompt may carry.

use std::{sync::Arc, time::Duration};

use revisit::config::Backend;
use revisit_jobs::{GreetingGenerate, Job, MessageSend};

use crate::{harness::*, runtime::one_greeting};

crate::on_both_backends!(
    a_429_is_retried_after_retry_after_and_the_llm_greeting_recorded,
    without_an_api_key_the_template_is_used_and_recorded,
    an_llm_answer_longer_than_one_sms_is_cut_to_the_limit,
    an_llm_that_answers_with_banned_content_never_reaches_the_customer,
    a_banned_first_answer_is_rewritten_once_with_the_reasons,
    another_customers_name_is_never_sent_and_never_repeated_to_the_llm,
    a_customer_named_like_a_greeting_stops_no_greeting,
    a_self_hosted_model_needs_no_key_and_no_health_data_leaves_by_default,
    a_greeting_addressed_to_someone_else_is_rewritten_then_replaced,
);

/// The customer is 张丽 (女). An answer to 叶女士 is rewritten with the reason; one to 张先生
/// after that falls back to the template, which addresses 张女士.
async fn a_greeting_addressed_to_someone_else_is_rewritten_then_replaced(backend: Backend) {
    let (llm, env) = llm_answering(
        backend,
        "叶女士，生日快乐！期待与您再见。",
        "张先生，生日快乐！期待与您再见。",
    )
    .await;
    let (revisit, r) = greeted(&env, true).await;
    assert_eq!(llm.count(), 2);
    let second = llm.received()[1].body.to_string();
    assert!(
        second.contains("叶女士") && second.contains("称呼与客户的姓（张）不符"),
        "{second}"
    );
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("template"));
    let message = r.message.unwrap();
    assert!(message.starts_with("张女士"), "{message}");
    let note = compliance_note(&env, revisit).await.unwrap();
    assert!(
        note.contains("叶女士") && note.contains("张先生") && note.contains("性别"),
        "{note}"
    );
}

/// An LLM that answers `first`, then `then` to every later request, and a test environment
/// that uses it.
async fn llm_answering(
    backend: Backend,
    first: &'static str,
    then: &'static str,
) -> (MockServer, TestEnv) {
    let llm = MockServer::start(Arc::new(move |n, _| {
        (200, vec![], chat_answer(if n == 0 { first } else { then }))
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[("LLM_API_URL", &llm.url), ("LLM_API_KEY", "sk-test")],
    )
    .await;
    (llm, env)
}

/// The compliance note recorded on a revisit.
async fn compliance_note(env: &TestEnv, revisit: i64) -> Option<String> {
    let notes: Vec<(i64, Option<String>)> = env.rows("SELECT id, compliance FROM revisits").await;
    notes
        .into_iter()
        .find(|(id, _)| *id == revisit)
        .and_then(|(_, n)| n)
}

const BANNED: &str =
    "张女士生日快乐！我们是全城最好的机构，水光针保证效果无副作用，生日特价999元，详询13800138000";

async fn an_llm_that_answers_with_banned_content_never_reaches_the_customer(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| (200, vec![], chat_answer(BANNED)))).await;
    let hook = MockServer::start(Arc::new(|_, _| {
        (200, vec![], serde_json::json!({"ok": true}))
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            ("REVISIT__REMINDERS__CHANNEL", "webhook"),
            ("REVISIT__WEBHOOK__URL", &hook.url),
        ],
    )
    .await;
    let (revisit, r) = greeted(&env, false).await;
    assert_eq!(llm.count(), 2, "one rewrite asked, then the template");
    let second = llm.received()[1].body.to_string();
    assert!(
        second.contains("未通过合规检查") && second.contains("广告法"),
        "{second}"
    );
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("template"));
    let sent = hook.received();
    assert_eq!(sent.len(), 1);
    let text = sent[0].body["message"].as_str().unwrap().to_owned();
    let limits = revisit::domain::compliance::Limits {
        max_chars: 70,
        allow_prices: false,
    };
    assert_eq!(
        revisit::domain::compliance::check(&text, limits),
        vec![],
        "{text}"
    );
    for banned in ["最好", "保证", "999", "13800138000"] {
        assert!(!text.contains(banned), "{text}");
    }
    let note = compliance_note(&env, revisit).await.unwrap();
    assert!(
        note.contains("改用模板") && note.contains("第九条"),
        "{note}"
    );
}

async fn a_banned_first_answer_is_rewritten_once_with_the_reasons(backend: Backend) {
    let (_llm, env) = llm_answering(
        backend,
        BANNED,
        "张女士，生日快乐！李明医生和我们都记得您，期待再见。",
    )
    .await;
    let (revisit, r) = greeted(&env, true).await;
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("llm"));
    assert_eq!(
        r.message.as_deref(),
        Some("张女士，生日快乐！李明医生和我们都记得您，期待再见。拒收请回复R")
    );
    let note = compliance_note(&env, revisit).await.unwrap();
    assert!(note.contains("已重写"), "{note}");
}

/// One greeting (see `one_greeting`) generated and sent by workers; its id and revisit.
async fn greeted(env: &TestEnv, test_mode: bool) -> (i64, revisit::store::Revisit) {
    let (revisit, _) = one_greeting(env, test_mode).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_sent(env, revisit).await;
    workers.stop().await;
    (revisit, r)
}

async fn wait_sent(env: &TestEnv, revisit: i64) -> revisit::store::Revisit {
    eventually(
        Duration::from_secs(30),
        "the revisit to be sent",
        || async {
            let r = env.store().revisit(revisit).await.unwrap().unwrap();
            (r.status == revisit::domain::revisit::RevisitStatus::Sent).then_some(r)
        },
    )
    .await
}

async fn a_429_is_retried_after_retry_after_and_the_llm_greeting_recorded(backend: Backend) {
    let llm = MockServer::start(Arc::new(|n, _| {
        if n == 0 {
            (
                429,
                vec![("retry-after", "1".to_owned())],
                serde_json::json!({"error": "rate limited"}),
            )
        } else {
            (
                200,
                vec![],
                chat_answer("“张女士，生日快乐！李明医生和我们都记得您，期待再见。”"),
            )
        }
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[("LLM_API_URL", &llm.url), ("LLM_API_KEY", "sk-test")],
    )
    .await;
    let (revisit, _) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_sent(&env, revisit).await;
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("llm"));
    assert_eq!(r.model.as_deref(), Some("deepseek-v4-flash"));
    assert_eq!(
        r.message.as_deref(),
        Some("张女士，生日快乐！李明医生和我们都记得您，期待再见。拒收请回复R")
    );
    let got = llm.received();
    assert_eq!(got.len(), 2);
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert_eq!(got[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(got[0].body["model"], "deepseek-v4-flash");
    assert_eq!(
        got[0].body["thinking"]["type"], "disabled",
        "DeepSeek V4 thinks unless told not to"
    );
    // The prompt has the salutation, but neither the phone nor the full name, nor (by
    // default) the membership level.
    let prompt = got[0].body.to_string();
    assert!(
        prompt.contains("张女士") && !prompt.contains("金卡"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("13800138000") && !prompt.contains("张丽"),
        "{prompt}"
    );
    workers.stop().await;
}

async fn without_an_api_key_the_template_is_used_and_recorded(backend: Backend) {
    let env = TestEnv::new(backend, &[]).await;
    let (revisit, _) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_sent(&env, revisit).await;
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("template"));
    assert!(r.model.is_none());
    let text = r.message.unwrap();
    assert!(
        text.starts_with("张女士") && text.contains("生日快乐"),
        "{text}"
    );
    assert!(text.chars().count() <= 70);
    assert_eq!(r.channel.as_deref(), Some("console"));
    workers.stop().await;
}

async fn an_llm_answer_longer_than_one_sms_is_cut_to_the_limit(backend: Backend) {
    let long = "张女士，生日快乐！".repeat(12);
    let llm = MockServer::start(Arc::new(move |_, _| (200, vec![], chat_answer(&long)))).await;
    let env = TestEnv::new(
        backend,
        &[("LLM_API_URL", &llm.url), ("LLM_API_KEY", "sk-test")],
    )
    .await;
    let (revisit, _) = one_greeting(&env, true).await;
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE, MessageSend::QUEUE]);
    let r = wait_sent(&env, revisit).await;
    let text = r.message.unwrap();
    // Cut at a sentence end, leaving room for the opt-out text that ends every message.
    let body = text
        .strip_suffix("拒收请回复R")
        .expect("the opt-out text ends it");
    assert!(text.chars().count() <= 70 && body.ends_with('！'), "{text}");
    workers.stop().await;
}

async fn another_customers_name_is_never_sent_and_never_repeated_to_the_llm(backend: Backend) {
    let (llm, env) = llm_answering(
        backend,
        "张女士，生日快乐！王芳托我们向您问好，期待再见。",
        "张女士，生日快乐！李明医生和我们都记得您，期待再见。",
    )
    .await;
    // Another customer of the same institution is called 王芳.
    let other = write_tree(&[
        ("common/institutions.json", INSTITUTIONS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C9", "王芳", "1988-01-01", "13900000009")]),
        ),
    ]);
    import_tree(&env, other.path()).await;
    let (revisit, r) = greeted(&env, true).await;
    assert_eq!(
        r.message.as_deref(),
        Some("张女士，生日快乐！李明医生和我们都记得您，期待再见。拒收请回复R"),
        "the answer naming another customer was rewritten"
    );
    let asked = llm.received();
    assert_eq!(asked.len(), 2);
    let second = asked[1].body.to_string();
    assert!(
        second.contains("其他客户的姓名") && second.contains("王*"),
        "{second}"
    );
    assert!(
        !second.contains("王芳"),
        "the name is not repeated to the LLM: {second}"
    );
    let note = compliance_note(&env, revisit).await.unwrap();
    assert!(
        note.contains("个人信息保护法") && !note.contains("王芳"),
        "{note}"
    );
}

/// Security review, finding 2: one staff upload of a person named 生日快乐 made every greeting
/// of the chain fail the name check, templates included. Customers named like the phrases a
/// greeting says, at this institution and at another, stop neither the LLM's text nor the
/// template.
async fn a_customer_named_like_a_greeting_stops_no_greeting(backend: Backend) {
    let answer = "张女士，生日快乐！李明医生和我们都记得您，期待再次为您服务。";
    let llm = MockServer::start(Arc::new(move |_, _| (200, vec![], chat_answer(answer)))).await;
    for with_llm in [true, false] {
        let vars: Vec<(&str, &str)> = if with_llm {
            vec![("LLM_API_URL", &llm.url), ("LLM_API_KEY", "sk-test")]
        } else {
            vec![]
        };
        let env = TestEnv::new(backend, &vars).await;
        let planted = write_tree(&[
            ("common/institutions.json", INSTITUTIONS),
            (
                "BJ-HA-001/customers.json",
                &customers_json(&[
                    ("BJ-HA-001-C8", "生日快乐", "1988-01-01", "13900000008"),
                    ("BJ-HA-001-C9", "张女士", "1988-01-02", "13900000009"),
                ]),
            ),
            (
                "SH-ML-002/customers.json",
                &customers_json(&[("SH-ML-002-C9", "期待再次", "1988-01-03", "13900000010")]),
            ),
        ]);
        import_tree(&env, planted.path()).await;
        let (revisit, r) = greeted(&env, true).await;
        let want = if with_llm { "llm" } else { "template" };
        assert_eq!(
            r.generated_by.map(|w| w.as_str()),
            Some(want),
            "{:?}",
            r.message
        );
        assert!(r.message.unwrap().contains("生日快乐"));
        assert_eq!(compliance_note(&env, revisit).await, None);
    }
    assert_eq!(llm.count(), 1, "the LLM's text passed at the first try");
}

/// Security review, finding 4: notes and tags (敏感肌, 皮肤敏感) went to the LLM. By default the
/// prompt carries nothing sensitive; a self-hosted OpenAI-compatible model (here on 127.0.0.1,
/// as on the chain's own server) writes greetings without an API key.
async fn a_self_hosted_model_needs_no_key_and_no_health_data_leaves_by_default(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("张女士，生日快乐！愿您新的一岁明媚从容。"),
        )
    }))
    .await;
    let env = TestEnv::new(
        backend,
        &[
            ("LLM_API_URL", &llm.url),
            ("REVISIT__LLM__SELF_HOSTED", "true"),
        ],
    )
    .await;
    // The customer has tags 敏感肌, notes 皮肤敏感，注意产品选择 and the level 金卡.
    let (_, r) = greeted(&env, true).await;
    assert_eq!(r.generated_by.map(|w| w.as_str()), Some("llm"));
    let asked = llm.received();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].headers.get("authorization").is_none(),
        "no key, no Authorization header"
    );
    let prompt = asked[0].body.to_string();
    assert!(prompt.contains("张女士"), "{prompt}");
    for sensitive in ["敏感", "产品选择", "金卡", "张丽", "13800138000"] {
        assert!(!prompt.contains(sensitive), "{sensitive} left: {prompt}");
    }
}
