//! The relation graph in NebulaGraph, over its v3 graph protocol (`nebula-client`). Statements
//! come from [`ngql`]; one session per process, opened on first use and opened again after an
//! error. NebulaGraph has no transactions: a write reads the versions it must not go below,
//! then deletes and inserts, so two jobs for one owner at the same moment may interleave (the
//! sync jobs of one owner rarely run at once; a full rebuild puts everything right).
//!
//! Not run against a real server: none can be installed where Revisit is developed. The
//! statements are pinned by tests; `tests/integration` runs the adapter against a server only
//! when `NEBULA_ADDR` is set.

pub mod ngql;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use fbthrift_transport::{
    AsyncTransport, AsyncTransportConfiguration,
    impl_tokio::{TokioSleep, TokioTcpStream},
};
use nebula_client::v3::{GraphClient, GraphQuery, GraphSession, GraphTransportResponseHandler};
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::Mutex;

use super::{
    EdgeKind, GraphSize, GraphStore, Owned, Relation, SharedBy, Vertex, VertexKind, known_vertices,
};
use crate::config::{GraphSettings, Secret};

type Session =
    GraphSession<AsyncTransport<TokioTcpStream, TokioSleep, GraphTransportResponseHandler>>;

/// Statements carry at most this many vertices or edges.
const CHUNK: usize = 500;

pub struct NebulaGraph {
    addr: String,
    user: String,
    password: Secret,
    space: String,
    timeout: Duration,
    session: Mutex<Option<Session>>,
}

impl NebulaGraph {
    pub fn new(s: &GraphSettings) -> anyhow::Result<Self> {
        Ok(Self {
            addr: s.nebula_addr.clone(),
            user: s.nebula_user.clone(),
            password: s.nebula_password.clone(),
            space: s.nebula_space.clone(),
            timeout: Duration::from_secs(s.timeout_secs.max(1)),
            session: Mutex::new(None),
        })
    }

    async fn connect(&self) -> anyhow::Result<Session> {
        let transport = AsyncTransport::with_tokio_tcp_connect(
            self.addr.as_str(),
            AsyncTransportConfiguration::new(GraphTransportResponseHandler),
        )
        .await
        .with_context(|| format!("connecting to NebulaGraph at {}", self.addr))?;
        GraphClient::new(transport)
            .authenticate(
                &self.user.as_bytes().to_vec(),
                &self.password.expose().as_bytes().to_vec(),
            )
            .await
            .map_err(|e| anyhow!("NebulaGraph at {} refused the login: {e}", self.addr))
    }

    /// Runs one statement (in the space unless `bare`) and decodes its rows.
    async fn rows<D: DeserializeOwned + Send>(
        &self,
        stmt: &str,
        bare: bool,
    ) -> anyhow::Result<Vec<D>> {
        let mut guard = self.session.lock().await;
        let session = match guard.as_mut() {
            Some(s) => s,
            None => guard.insert(tokio::time::timeout(self.timeout, self.connect()).await??),
        };
        let text = if bare {
            stmt.to_owned()
        } else {
            format!("{}; {stmt}", ngql::use_space(&self.space))
        };
        let answer =
            tokio::time::timeout(self.timeout, session.query_as::<D>(&text.into_bytes())).await;
        match answer {
            Ok(Ok(out)) => {
                if session.is_close_required() {
                    *guard = None;
                }
                Ok(out.data_set)
            }
            Ok(Err(e)) => {
                if session.is_close_required()
                    || matches!(
                        e,
                        nebula_client::v3::graph::GraphQueryError::ExecuteError(_)
                    )
                {
                    *guard = None;
                }
                Err(anyhow!("NebulaGraph: {e}"))
            }
            Err(_) => {
                *guard = None;
                Err(anyhow!(
                    "NebulaGraph did not answer within {:?}",
                    self.timeout
                ))
            }
        }
    }

    async fn run(&self, stmt: &str) -> anyhow::Result<()> {
        self.rows::<Ignored>(stmt, false).await.map(drop)
    }
}

/// A row whose columns are not read.
#[derive(Deserialize)]
struct Ignored {}

#[derive(Deserialize)]
struct VersionRow {
    vid: String,
    version: i64,
}

#[derive(Deserialize)]
struct EdgeRow {
    kind: String,
    src: String,
    dst: String,
    rank: i64,
    owner: String,
    version: i64,
}

#[derive(Deserialize)]
struct StepRow {
    from: String,
    to: String,
    kind: String,
    forward: bool,
}

#[derive(Deserialize)]
struct LeafRow {
    from: String,
    to: String,
    kind: String,
    on_date: String,
    amount_cents: i64,
}

#[derive(Deserialize)]
struct VertexRow {
    vid: String,
    kind: String,
    code: String,
    name: String,
    institution_id: i64,
    detail: String,
}

#[derive(Deserialize)]
struct PairRow {
    customer: String,
    item: String,
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

#[derive(Deserialize)]
struct ItemCountRow {
    item: String,
    n: i64,
}

#[derive(Deserialize)]
struct StatsRow {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Count")]
    count: i64,
}

fn text(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[async_trait]
impl GraphStore for NebulaGraph {
    fn describe(&self) -> String {
        format!("NebulaGraph {}，图空间 {}", self.addr, self.space)
    }

    async fn version(&self) -> anyhow::Result<String> {
        let mut guard = self.session.lock().await;
        let session = match guard.as_mut() {
            Some(s) => s,
            None => guard.insert(self.connect().await?),
        };
        let hosts = session
            .show_hosts()
            .await
            .map_err(|e| anyhow!("NebulaGraph: {e}"))?;
        Ok(hosts
            .data_set
            .first()
            .map(|h| format!("NebulaGraph {}", h.version))
            .unwrap_or_else(|| "NebulaGraph (no storage hosts)".to_owned()))
    }

    async fn init(&self) -> anyhow::Result<()> {
        let mut schema = ngql::schema(&self.space).into_iter();
        let space = schema.next().expect("the space comes first");
        self.rows::<Ignored>(&space, true).await?;
        // A new space is usable after two heartbeats of the meta service (10 s each by default).
        let started = std::time::Instant::now();
        loop {
            match self
                .rows::<Ignored>(&ngql::use_space(&self.space), true)
                .await
            {
                Ok(_) => break,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    tracing::debug!(error = %e, "NebulaGraph space not ready yet");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e),
            }
        }
        for stmt in schema {
            self.run(&stmt).await?;
        }
        Ok(())
    }

    async fn reset(&self) -> anyhow::Result<()> {
        self.rows::<Ignored>(&ngql::clear_space(&self.space), true)
            .await
            .map(drop)
    }

    async fn write(&self, owned: &[Owned], version: i64) -> anyhow::Result<()> {
        let mut newer: HashSet<&str> = HashSet::new();
        let vertex_owners: Vec<String> = owned
            .iter()
            .filter(|o| o.vertex.is_some())
            .map(|o| o.owner.clone())
            .collect();
        for chunk in vertex_owners.chunks(CHUNK) {
            let rows: Vec<VersionRow> = self.rows(&ngql::vertex_versions(chunk), false).await?;
            for r in rows.iter().filter(|r| r.version > version) {
                if let Some(o) = owned.iter().find(|o| o.owner == r.vid) {
                    newer.insert(o.owner.as_str());
                }
            }
        }
        // The customers whose edges these owners may hold.
        let mut customers: Vec<String> = owned
            .iter()
            .flat_map(|o| o.edges.iter().map(|e| e.src.clone()))
            .chain(
                owned
                    .iter()
                    .filter(|o| o.owner.starts_with("c:"))
                    .map(|o| o.owner.clone()),
            )
            .collect();
        customers.sort_unstable();
        customers.dedup();
        let owners: HashSet<&str> = owned.iter().map(|o| o.owner.as_str()).collect();
        let mut existing = Vec::new();
        for chunk in customers.chunks(CHUNK) {
            let rows: Vec<EdgeRow> = self.rows(&ngql::owned_edges(chunk), false).await?;
            existing.extend(
                rows.into_iter()
                    .filter(|r| owners.contains(r.owner.as_str())),
            );
        }
        for r in existing.iter().filter(|r| r.version > version) {
            if let Some(o) = owned.iter().find(|o| o.owner == r.owner) {
                newer.insert(o.owner.as_str());
            }
        }
        let kept: Vec<&Owned> = owned
            .iter()
            .filter(|o| !newer.contains(o.owner.as_str()))
            .collect();
        let stale: Vec<(EdgeKind, String, String, i64)> = existing
            .into_iter()
            .filter(|r| !newer.contains(r.owner.as_str()))
            .filter_map(|r| Some((EdgeKind::parse(&r.kind)?, r.src, r.dst, r.rank)))
            .collect();
        for chunk in stale.chunks(CHUNK) {
            for stmt in ngql::delete_edges(chunk) {
                self.run(&stmt).await?;
            }
        }
        let own: Vec<&Vertex> = kept.iter().filter_map(|o| o.vertex.as_ref()).collect();
        let shared: Vec<&Vertex> = kept.iter().flat_map(|o| o.shared.iter()).collect();
        for (vertices, if_not_exists) in [(own, false), (shared, true)] {
            for chunk in vertices.chunks(CHUNK) {
                for stmt in ngql::insert_vertices(chunk, version, if_not_exists) {
                    self.run(&stmt).await?;
                }
            }
        }
        let edges: Vec<(&str, &super::Edge)> = kept
            .iter()
            .flat_map(|o| o.edges.iter().map(move |e| (o.owner.as_str(), e)))
            .collect();
        for chunk in edges.chunks(CHUNK) {
            for stmt in ngql::insert_edges(chunk, version) {
                self.run(&stmt).await?;
            }
        }
        Ok(())
    }

    async fn size(&self) -> anyhow::Result<GraphSize> {
        // The figures of the last `SUBMIT JOB STATS` (which NebulaGraph runs in the background).
        let _ = self.run(ngql::submit_stats()).await;
        let rows: Vec<StatsRow> = self.rows(ngql::show_stats(), false).await?;
        let of = |name: &str| {
            rows.iter()
                .find(|r| r.kind == "Space" && r.name == name)
                .map_or(0, |r| r.count.max(0) as u64)
        };
        Ok(GraphSize {
            vertices: of("vertices"),
            edges: of("edges"),
        })
    }

    async fn vertices(&self, vids: &[String]) -> anyhow::Result<Vec<Vertex>> {
        let mut out = Vec::new();
        for chunk in vids.chunks(CHUNK) {
            let rows: Vec<VertexRow> = self.rows(&ngql::fetch_vertices(chunk), false).await?;
            out.extend(rows.into_iter().filter_map(|r| {
                Some(Vertex {
                    kind: VertexKind::parse(&r.kind)?,
                    vid: r.vid,
                    code: r.code,
                    name: text(r.name),
                    institution_id: (r.institution_id != 0).then_some(r.institution_id),
                    detail: text(r.detail),
                })
            }));
        }
        Ok(out)
    }

    async fn relations(&self, start: &str, depth: u32) -> anyhow::Result<Vec<Relation>> {
        // The same walk as the embedded graph's recursive query, a step at a time: paths that
        // never pass a vertex twice, steps folded to their nearest depth.
        let mut paths: Vec<Vec<String>> = vec![vec![start.to_owned()]];
        let mut steps: BTreeMap<(String, String, bool, String), u32> = BTreeMap::new();
        let mut reached: HashMap<String, u32> = HashMap::from([(start.to_owned(), 0)]);
        for d in 1..depth.max(1) + 1 {
            let mut frontier: Vec<String> =
                paths.iter().filter_map(|p| p.last().cloned()).collect();
            frontier.sort_unstable();
            frontier.dedup();
            if frontier.is_empty() || d > depth {
                break;
            }
            let rows: Vec<StepRow> = self.rows(&ngql::walk_step(&frontier), false).await?;
            let mut next = Vec::new();
            for path in &paths {
                let Some(tip) = path.last() else { continue };
                for r in rows
                    .iter()
                    .filter(|r| &r.from == tip && !path.contains(&r.to))
                {
                    let depth_now = steps
                        .entry((r.from.clone(), r.kind.clone(), r.forward, r.to.clone()))
                        .or_insert(d);
                    *depth_now = (*depth_now).min(d);
                    let seen = reached.entry(r.to.clone()).or_insert(d);
                    *seen = (*seen).min(d);
                    let mut longer = path.clone();
                    longer.push(r.to.clone());
                    next.push(longer);
                }
            }
            paths = next;
        }
        let mut out: Vec<Relation> = Vec::new();
        for ((from, kind, forward, to), d) in steps {
            let Some(edge) = EdgeKind::parse(&kind) else {
                continue;
            };
            out.push(Relation {
                depth: d,
                from,
                edge,
                forward,
                to: Vertex::or_bare(&to, None),
                times: 1,
                first_date: None,
                last_date: None,
                amount_cents: None,
            });
        }
        let mut leaf_from: Vec<String> = reached
            .iter()
            .filter(|(vid, d)| **d < depth && vid.starts_with("c:"))
            .map(|(vid, _)| vid.clone())
            .collect();
        leaf_from.sort_unstable();
        let mut folded: BTreeMap<(String, String, String), Relation> = BTreeMap::new();
        // A relation's visits are its distinct days (an order of three lines is one visit), as
        // the embedded graph counts them.
        let mut days: HashMap<(String, String, String), std::collections::BTreeSet<String>> =
            HashMap::new();
        for chunk in leaf_from.chunks(CHUNK) {
            let rows: Vec<LeafRow> = self.rows(&ngql::leaves(chunk), false).await?;
            for r in rows {
                let Some(edge) = EdgeKind::parse(&r.kind) else {
                    continue;
                };
                let date = r.on_date.parse().ok();
                let amount = (r.amount_cents != 0).then_some(r.amount_cents);
                let d = reached.get(&r.from).copied().unwrap_or(0) + 1;
                let key_of = |r: &LeafRow| (r.from.clone(), r.kind.clone(), r.to.clone());
                let rel = folded.entry(key_of(&r)).or_insert_with(|| Relation {
                    depth: d,
                    from: r.from.clone(),
                    edge,
                    forward: true,
                    to: Vertex::or_bare(&r.to, None),
                    times: 0,
                    first_date: None,
                    last_date: None,
                    amount_cents: None,
                });
                let seen = days.entry(key_of(&r)).or_default();
                if seen.insert(r.on_date.clone()) {
                    rel.times += 1;
                }
                rel.first_date = rel.first_date.min(date).or(date.or(rel.first_date));
                rel.last_date = rel.last_date.max(date);
                if let Some(a) = amount {
                    rel.amount_cents = Some(rel.amount_cents.unwrap_or(0) + a);
                }
            }
        }
        out.extend(folded.into_values());
        let vids: Vec<String> = out.iter().map(|r| r.to.vid.clone()).collect();
        let known = known_vertices(self, &vids).await?;
        for r in &mut out {
            if let Some(v) = known.get(&r.to.vid) {
                r.to = v.clone();
            }
        }
        out.sort_by(|a, b| {
            (
                a.depth,
                a.edge.as_str(),
                std::cmp::Reverse(a.last_date),
                &a.to.vid,
            )
                .cmp(&(
                    b.depth,
                    b.edge.as_str(),
                    std::cmp::Reverse(b.last_date),
                    &b.to.vid,
                ))
        });
        Ok(out)
    }

    async fn shared_with(
        &self,
        customer: &str,
        institution_id: i64,
        by: SharedBy,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, Vec<String>)>> {
        let rows: Vec<PairRow> = self
            .rows(
                &ngql::shared_with(customer, institution_id, by.kinds()),
                false,
            )
            .await?;
        let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            by_customer.entry(r.customer).or_default().push(r.item);
        }
        let mut ranked: Vec<(String, Vec<String>)> = by_customer
            .into_iter()
            .map(|(c, mut items)| {
                items.sort_unstable();
                items.dedup();
                (c, items)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit);
        Ok(ranked)
    }

    async fn also_had(
        &self,
        item: &str,
        institution_id: i64,
        limit: usize,
    ) -> anyhow::Result<(i64, Vec<(String, i64)>)> {
        let total: Vec<CountRow> = self
            .rows(&ngql::bought_by(item, institution_id), false)
            .await?;
        let rows: Vec<ItemCountRow> = self
            .rows(&ngql::also_had(item, institution_id, limit), false)
            .await?;
        Ok((
            total.first().map_or(0, |r| r.n),
            rows.into_iter().map(|r| (r.item, r.n)).collect(),
        ))
    }
}
