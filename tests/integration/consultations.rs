//! Consultation records (咨询记录) on both engines: their import (bad records named by field,
//! the valid ones kept, a second import unchanged), staff's view of them, and their place in a
//! greeting's prompt (projects and outcome; the note without its digits).

use std::sync::Arc;

use revisit::{config::Backend, domain::followup::FrequencyCap, store::NewRevisit};
use revisit_jobs::{GreetingGenerate, Job};

use crate::harness::*;

crate::on_both_backends!(consultations_import_show_to_staff_and_join_the_greeting_prompt);

const PROJECTS: &str = r#"[
  {"project_code":"PRJ-001","name":"水光针","category":"注射","standard_price":2800.0},
  {"project_code":"PRJ-003","name":"热玛吉","category":"抗衰","standard_price":16800.0}
]"#;

async fn consultations_import_show_to_staff_and_join_the_greeting_prompt(backend: Backend) {
    let llm = MockServer::start(Arc::new(|_, _| {
        (
            200,
            vec![],
            chat_answer("周女士，生日快乐！愿您新的一岁明媚从容，我们一直在这里。"),
        )
    }))
    .await;
    // BJ-HA-001 chose to share consultations and dates (it holds its customers' separate
    // consent); by default neither leaves.
    let env = TestEnv::new(
        backend,
        &[
            ("LLM_API_URL", &llm.url),
            ("LLM_API_KEY", "sk-test"),
            (
                "REVISIT__LLM__SHARE_BY_INSTITUTION",
                r#"{ "BJ-HA-001" = ["treatments", "dates", "consultations"] }"#,
            ),
        ],
    )
    .await;
    let consultations = serde_json::json!([
        {"consultation_code": "BJ-HA-001-ZX1", "customer_code": "BJ-HA-001-C1",
         "consult_date": "2026-10-08", "channel": "到店", "consultant": "王顾问",
         "doctor_code": "DOC-1", "project_codes": ["PRJ-003", "PRJ-001"],
         "content": "担心恢复期影响上班，电话13912345678", "outcome": "跟进中"},
        {"consultation_code": "BJ-HA-001-ZX2", "customer_code": "BJ-HA-001-C1",
         "consult_date": "2026-05-01", "channel": "电话"},
        {"consultation_code": "BJ-HA-001-ZX3", "customer_code": "BJ-HA-001-C1",
         "consult_date": "2026-05-02", "project_codes": ["PRJ-001", "PRJ-999"]},
        {"consultation_code": "BJ-HA-001-ZX4", "customer_code": "SH-ML-002-C9",
         "consult_date": "2026-05-02"},
        {"consultation_code": "BJ-HA-001-ZX5", "customer_code": "BJ-HA-001-C404",
         "consult_date": "2026-05-02"},
        {"consultation_code": "BJ-HA-001-ZX6", "customer_code": "BJ-HA-001-C1",
         "consult_date": "2026-5-2x"},
        {"consultation_code": "BJ-HA-001-ZX7", "customer_code": "BJ-HA-001-C1",
         "consult_date": "2026-05-02", "doctor_code": "DOC-404"}
    ])
    .to_string();
    let sh_customer = serde_json::json!([{"customer_code": "SH-ML-002-C9",
        "person": {"name": "吴倩", "phone": "13900000009"}}])
    .to_string();
    let files = [
        ("common/institutions.json", INSTITUTIONS),
        ("common/projects.json", PROJECTS),
        ("common/doctors.json", DOCTORS),
        (
            "BJ-HA-001/customers.json",
            &customers_json(&[("BJ-HA-001-C1", "周婷", "1990-05-15", "13800138000")]),
        ),
        ("SH-ML-002/customers.json", &sh_customer),
        ("BJ-HA-001/consultations.json", &consultations),
    ];
    let dir = write_tree(&files);
    let batch = import_tree(&env, dir.path()).await;
    let logs = env.store().import_log(&batch).await.unwrap();
    let log = logs
        .iter()
        .find(|l| l.path.ends_with("consultations.json"))
        .expect("the consultations file is logged");
    assert_eq!(
        (log.total, log.inserted, log.rejected),
        (7, 2, 5),
        "{log:?}"
    );
    let mut named: Vec<(usize, &str, &str)> = log
        .errors
        .iter()
        .map(|e| (e.record, e.key.as_deref().unwrap_or(""), e.field.as_str()))
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            (2, "BJ-HA-001-ZX3", "project_codes[1]"),
            (3, "BJ-HA-001-ZX4", "customer_code"),
            (4, "BJ-HA-001-ZX5", "customer_code"),
            (5, "BJ-HA-001-ZX6", "consult_date"),
            (6, "BJ-HA-001-ZX7", "doctor_code"),
        ],
        "{:?}",
        log.errors
    );
    let other = log.errors.iter().find(|e| e.record == 3).unwrap();
    assert!(
        other.message.contains("SH-ML-002"),
        "names the customer's owner: {other:?}"
    );

    // The same file again changes nothing.
    let again = write_tree(&files);
    let batch = import_tree(&env, again.path()).await;
    let logs = env.store().import_log(&batch).await.unwrap();
    let log = logs
        .iter()
        .find(|l| l.path.ends_with("consultations.json"))
        .unwrap();
    assert_eq!((log.inserted, log.updated, log.unchanged), (0, 0, 2));

    // Staff see them, newest first, with project and doctor names.
    let inst = env.store().institution("BJ-HA-001").await.unwrap().unwrap();
    let detail = env
        .store()
        .customer_detail(inst.id, "BJ-HA-001-C1")
        .await
        .unwrap()
        .unwrap();
    let seen: Vec<(&str, Vec<String>, Option<&str>)> = detail
        .consultations
        .iter()
        .map(|c| {
            (
                c.code.as_str(),
                c.projects.clone(),
                c.doctor_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "BJ-HA-001-ZX1",
                vec!["热玛吉".to_owned(), "水光针".to_owned()],
                Some("李明")
            ),
            ("BJ-HA-001-ZX2", vec![], None),
        ]
    );

    // A greeting's prompt carries what the customer asked about, and the note without digits.
    let (customer_id, person_id): (i64, i64) = env
        .rows("SELECT id, person_id FROM customers WHERE code = 'BJ-HA-001-C1'")
        .await[0];
    let max = env
        .app
        .settings
        .policy(&revisit_jobs::KindInfo::of::<GreetingGenerate>())
        .max_attempts as i32;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 5, 15).unwrap();
    env.store()
        .create_revisits(
            &[NewRevisit::birthday(customer_id, person_id, date)],
            true,
            max,
            FrequencyCap::NONE,
        )
        .await
        .unwrap();
    let workers = env.start_workers(vec![GreetingGenerate::QUEUE]);
    eventually(
        std::time::Duration::from_secs(20),
        "the LLM to be asked",
        || async { (llm.count() > 0).then_some(()) },
    )
    .await;
    workers.stop().await;
    let prompt = llm.received()[0].body.to_string();
    assert!(
        prompt.contains("2026-10-08 咨询：热玛吉、水光针（跟进中）"),
        "{prompt}"
    );
    assert!(prompt.contains("2026-05-01 咨询：未指明项目"), "{prompt}");
    assert!(prompt.contains("担心恢复期影响上班"), "{prompt}");
    assert!(
        !prompt.contains("1391") && !prompt.contains("13800138000"),
        "{prompt}"
    );
}
