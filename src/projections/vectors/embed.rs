//! Turning text into vectors. The offline default needs no model and no download: each text is
//! cut into overlapping character n-grams (1 to 3 characters, which suits Chinese, where a word
//! has no spaces around it), each n-gram is hashed into one of `dimension` buckets with a sign,
//! and the sums are scaled to unit length. Two texts are close when they share many n-grams:
//! this is **lexical similarity** (水光针 is close to 水光补水, not to 玻尿酸 although both
//! hydrate), not the meaning a language model would see.
//!
//! The hash is FNV-1a (64 bits), written out here, so a vector never changes with a library's
//! version: vectors stored by one release stay comparable with queries of the next.
//!
//! With `vectors.embeddings_url` set, texts go to an OpenAI-compatible `/v1/embeddings`
//! endpoint instead (`{"model", "input": [..]}` → `data[i].embedding`), a batch per call; its
//! vectors must have `vectors.dimension` dimensions.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Secret, VectorSettings};

/// How texts become vectors: offline, or through an embeddings API.
#[derive(Clone)]
pub enum Embedder {
    Lexical(LexicalEmbedder),
    Remote(RemoteEmbedder),
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Worth another try later: overloaded, unreachable, timed out.
    #[error("embeddings unavailable: {0}")]
    Unavailable(String),
    /// Will not work by trying again: a bad key, model or answer.
    #[error("embeddings refused: {0}")]
    Refused(String),
}

impl Embedder {
    pub fn from_settings(s: &VectorSettings) -> Result<Self, reqwest::Error> {
        Ok(if s.embeddings_url.is_empty() {
            Self::Lexical(LexicalEmbedder::new(s.dimension))
        } else {
            Self::Remote(RemoteEmbedder::new(s)?)
        })
    }

    pub fn dimension(&self) -> usize {
        match self {
            Self::Lexical(l) => l.dimension(),
            Self::Remote(r) => r.dimension,
        }
    }

    /// What `revisit check` and the docs call it.
    pub fn describe(&self) -> String {
        match self {
            Self::Lexical(l) => format!(
                "离线词面向量（字符 n-gram，{} 维；按字面相似，不是语义）",
                l.dimension()
            ),
            Self::Remote(r) => format!("{}（{}，{} 维）", r.model, r.url, r.dimension),
        }
    }

    /// The vectors of `texts`, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self {
            Self::Lexical(l) => Ok(texts.iter().map(|t| l.embed(t)).collect()),
            Self::Remote(r) => r.embed(texts).await,
        }
    }
}

/// An OpenAI-compatible embeddings API.
#[derive(Clone)]
pub struct RemoteEmbedder {
    http: reqwest::Client,
    url: String,
    key: Secret,
    model: String,
    dimension: usize,
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl RemoteEmbedder {
    fn new(s: &VectorSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(s.timeout_secs))
                .build()?,
            url: s.embeddings_url.clone(),
            key: s.embeddings_key.clone(),
            model: s.embeddings_model.clone(),
            dimension: s.dimension,
        })
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = self
            .http
            .post(&self.url)
            .json(&serde_json::json!({"model": self.model, "input": texts}));
        if !self.key.is_empty() {
            request = request.bearer_auth(self.key.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(EmbedError::Unavailable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            let body: String = response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(EmbedError::Refused(format!("HTTP {status}: {body}")));
        }
        let answer: EmbeddingsAnswer = response
            .json()
            .await
            .map_err(|e| EmbedError::Refused(format!("not an embeddings answer: {e}")))?;
        if answer.data.len() != texts.len() {
            return Err(EmbedError::Refused(format!(
                "{} embeddings for {} texts",
                answer.data.len(),
                texts.len()
            )));
        }
        let mut out = vec![Vec::new(); texts.len()];
        for (i, item) in answer.data.into_iter().enumerate() {
            let at = item.index.unwrap_or(i);
            if at >= out.len() || item.embedding.len() != self.dimension {
                return Err(EmbedError::Refused(format!(
                    "embedding {at} has {} dimensions; vectors.dimension is {}",
                    item.embedding.len(),
                    self.dimension
                )));
            }
            out[at] = unit(item.embedding);
        }
        Ok(out)
    }
}

/// `v` scaled to unit length (a zero vector is left as it is).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Weights of unigrams, bigrams and trigrams: single characters say little on their own.
const WEIGHTS: [f32; 3] = [0.5, 1.0, 1.0];

/// Hashed character n-grams, unit length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LexicalEmbedder {
    dimension: usize,
}

impl LexicalEmbedder {
    pub fn new(dimension: usize) -> Self {
        assert!(
            dimension >= 8,
            "a vector of fewer than 8 dimensions says nothing"
        );
        Self { dimension }
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The vector of `text`. Case and whitespace do not count; a text with nothing to count
    /// gets a fixed vector of its own, so that no vector is all zeros.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let chars: Vec<char> = text
            .chars()
            .flat_map(char::to_lowercase)
            .filter(|c| !c.is_whitespace())
            .collect();
        let mut v = vec![0f32; self.dimension];
        for (n, weight) in WEIGHTS.iter().enumerate() {
            let len = n + 1;
            for gram in chars.windows(len) {
                let h = fnv1a(gram);
                let bucket = (h % self.dimension as u64) as usize;
                let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
                v[bucket] += sign * weight;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            v[0] = 1.0;
        } else {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }
}

fn fnv1a(chars: &[char]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buf = [0u8; 4];
    for c in chars {
        for b in c.encode_utf8(&mut buf).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_stable_and_never_zero() {
        let e = LexicalEmbedder::new(256);
        let v = e.embed("水光针 补水保湿");
        assert_eq!(v.len(), 256);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-5);
        assert_eq!(v, e.embed("水光针补水保湿"), "whitespace does not count");
        assert_eq!(e.embed("ABC"), e.embed("abc"));
        let empty = e.embed("  ");
        assert!((cosine(&empty, &empty) - 1.0).abs() < 1e-5);
        // Pinned: a change of the hashing would make stored vectors incomparable.
        assert_eq!(fnv1a(&['水']), fnv1a(&['水']));
        assert_ne!(fnv1a(&['a', 'b']), fnv1a(&['b', 'a']));
    }

    #[test]
    fn texts_sharing_characters_are_closer_than_others() {
        let e = LexicalEmbedder::new(256);
        let water = e.embed("水光针 补水保湿 改善肤质");
        let water_too = e.embed("水光补水 保湿嫩肤");
        let botox = e.embed("肉毒素除皱 瘦脸");
        assert!(cosine(&water, &water_too) > cosine(&water, &botox) + 0.1);
    }
}
