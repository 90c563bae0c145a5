//! Vector search's embeddings provider against an OpenAI-compatible `/v1/embeddings` peer on
//! 127.0.0.1: a batch per call with the model and the key, vectors in the order of the texts
//! (whatever order the answer lists them in), and its failures told apart.

use std::sync::Arc;

use revisit::{
    config::Secret,
    projections::vectors::embed::{EmbedError, Embedder},
};
use serde_json::{Value, json};

use crate::harness::*;

fn settings(url: &str) -> revisit::config::VectorSettings {
    revisit::config::VectorSettings {
        enabled: true,
        url: String::new(),
        api_key: Secret::new(""),
        lock_wait_secs: 1,
        hold_secs: 1,
        dir: String::new(),
        dimension: 8,
        embeddings_url: url.to_owned(),
        embeddings_key: Secret::new("sk-embed"),
        embeddings_model: "bge-m3".into(),
        timeout_secs: 5,
    }
}

#[tokio::test]
async fn an_embeddings_api_gets_one_batch_and_its_answers_are_checked() {
    // Answers in reverse order, each vector naming its text's length.
    let peer = MockServer::start(Arc::new(|n, req| {
        if n == 1 {
            return (503, vec![], json!({"error": "busy"}));
        }
        let inputs = req.body["input"].as_array().cloned().unwrap_or_default();
        let dims = if n == 2 { 3 } else { 8 };
        let mut data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let len = t.as_str().unwrap_or_default().chars().count() as f32;
                let mut v = vec![0.0f32; dims];
                v[0] = len;
                json!({"object": "embedding", "index": i, "embedding": v})
            })
            .collect();
        data.reverse();
        (
            200,
            vec![],
            json!({"object": "list", "model": "bge-m3", "data": data}),
        )
    }))
    .await;
    let embedder = Embedder::from_settings(&settings(&peer.url)).unwrap();
    let texts = vec!["水光针".to_owned(), "热玛吉紧致".to_owned()];
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), 2);
    assert!(
        vectors
            .iter()
            .all(|v| v.len() == 8 && (v[0] - 1.0).abs() < 1e-6)
    );
    let asked = &peer.received()[0];
    assert_eq!(asked.body["model"], "bge-m3");
    assert_eq!(asked.body["input"], json!(texts));
    assert_eq!(asked.headers["authorization"], "Bearer sk-embed");
    // Busy: another try later. Vectors of the wrong size: refused, never stored.
    assert!(matches!(
        embedder.embed(&texts).await,
        Err(EmbedError::Unavailable(_))
    ));
    match embedder.embed(&texts).await {
        Err(EmbedError::Refused(e)) => assert!(e.contains("3 dimensions"), "{e}"),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    // Without a URL, the offline embedder: no call at all.
    let offline = Embedder::from_settings(&settings("")).unwrap();
    assert_eq!(offline.embed(&texts).await.unwrap()[0].len(), 8);
    assert_eq!(peer.count(), 3);
}
