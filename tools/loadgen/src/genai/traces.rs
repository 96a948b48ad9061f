//! Traces: agent invocations, each a root HTTP span and an agent span over a few steps (model calls with
//! `gen_ai.*` token counts, tool calls, embeddings followed by a vector search), with a configurable share of
//! failed model calls (error status, `error.type` and an exception event).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;

use super::vocab::{ERRORS, MODELS, MS, f, i, pick, resource, s, scope, strings};
use crate::template::{Template, TemplateBuilder, TemplateError};

const TOOLS: &[&str] = &[
    "search_docs",
    "get_order_status",
    "run_sql",
    "fetch_url",
    "calculator",
];
const AGENTS: &[&str] = &["support_agent", "research_agent", "sql_agent"];
const COLLECTIONS: &[&str] = &["kb_articles", "product_docs", "tickets_2026"];

/// Builds the spans of one trace into `spans` (at most `budget` of them); returns how many it added.
struct TraceShape<'a> {
    b: &'a mut TemplateBuilder,
    spans: &'a mut Vec<Span>,
    next_id: &'a mut u32,
    /// The trace's index in the request (each use of the trace id gets its own sentinel).
    trace: u32,
    error_rate: f64,
    /// How long before the request time the last span ended (its exception event takes that time).
    last_end_ago: u64,
}

impl TraceShape<'_> {
    fn span(
        &mut self,
        parent: Option<u32>,
        name: String,
        kind: span::SpanKind,
        start_ago: u64,
        duration: u64,
        attributes: Vec<KeyValue>,
    ) -> u32 {
        let index = *self.next_id;
        *self.next_id += 1;
        let id = self.b.span_id(index, true);
        let trace_id = self.b.trace_id(self.trace);
        let parent_span_id = parent.map(|p| self.b.span_id(p, false)).unwrap_or_default();
        let start = self.b.time_ago(start_ago);
        self.last_end_ago = start_ago.saturating_sub(duration);
        let end = self.b.time_ago(self.last_end_ago);
        self.spans.push(Span {
            trace_id,
            span_id: id,
            parent_span_id,
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            flags: 0x100 | 0x1, // has-is-remote known, sampled
            status: Some(Status::default()),
            ..Default::default()
        });
        index
    }

    fn fail_last(&mut self) {
        let at = self.b.time_ago(self.last_end_ago);
        let rng = self.b.rng();
        let (kind, message) = *pick(rng, ERRORS);
        if let Some(last) = self.spans.last_mut() {
            last.status = Some(Status {
                code: status::StatusCode::Error as i32,
                message: message.to_owned(),
            });
            last.attributes.push(s("error.type", kind));
            last.events.push(span::Event {
                time_unix_nano: at,
                name: "exception".to_owned(),
                attributes: vec![s("exception.type", kind), s("exception.message", message)],
                ..Default::default()
            });
        }
    }

    /// One agent invocation: root HTTP span, agent span, then model calls, tools and retrievals.
    fn build(&mut self, budget: usize) {
        let start = self.spans.len();
        let total_ms = u64::from(self.b.rng().u32(800..9_000));
        let route_attrs = vec![
            s("http.request.method", "POST"),
            s("http.route", "/v1/chat/completions"),
            i("http.response.status_code", 200),
            s("url.scheme", "http"),
            s("server.address", "rag-api.internal"),
            i("server.port", 8080),
            s("user_agent.original", "python-httpx/0.27.0"),
        ];
        let root = self.span(
            None,
            "POST /v1/chat/completions".into(),
            span::SpanKind::Server,
            total_ms * MS,
            total_ms * MS,
            route_attrs,
        );
        if self.spans.len() - start >= budget {
            return;
        }
        let rng = self.b.rng();
        let agent_name = *pick(rng, AGENTS);
        let agent_id = format!("asst_{:012x}", rng.u64(..1 << 48));
        let conversation = format!("conv_{:016x}", rng.u64(..));
        let agent = self.span(
            Some(root),
            format!("invoke_agent {agent_name}"),
            span::SpanKind::Internal,
            (total_ms - 5) * MS,
            (total_ms - 10) * MS,
            vec![
                s("gen_ai.operation.name", "invoke_agent"),
                s("gen_ai.agent.name", agent_name),
                s("gen_ai.agent.id", agent_id),
                s("gen_ai.conversation.id", conversation),
            ],
        );
        let steps = self.b.rng().usize(2..9);
        let mut at = total_ms - 20;
        for step in 0..steps {
            if self.spans.len() - start >= budget || at < 30 {
                return;
            }
            let rng = self.b.rng();
            let choice = if step == 0 { 0 } else { rng.u8(0..10) };
            let dur = u64::from(rng.u32(20..(at as u32).clamp(21, 3_000)));
            match choice {
                0..=1 => {
                    let model = rng
                        .choice(["text-embedding-3-small", "bge-large-en-v1.5"])
                        .unwrap_or("bge-large-en-v1.5");
                    let tokens = i64::from(rng.u32(8..512));
                    let collection = *pick(rng, COLLECTIONS);
                    let top_k = i64::from(rng.u8(3..20));
                    self.span(
                        Some(agent),
                        format!("embeddings {model}"),
                        span::SpanKind::Client,
                        at * MS,
                        (dur / 4).max(1) * MS,
                        vec![
                            s("gen_ai.operation.name", "embeddings"),
                            s("gen_ai.provider.name", "openai"),
                            s("gen_ai.request.model", model),
                            i("gen_ai.usage.input_tokens", tokens),
                            i("gen_ai.embeddings.dimension.count", 1536),
                        ],
                    );
                    if self.spans.len() - start < budget {
                        self.span(
                            Some(agent),
                            format!("search {collection}"),
                            span::SpanKind::Client,
                            (at - dur / 4) * MS,
                            (dur / 2).max(1) * MS,
                            vec![
                                s("db.system.name", "qdrant"),
                                s("db.operation.name", "search"),
                                s("db.collection.name", collection),
                                i("db.vector.query.top_k", top_k),
                                i("db.response.returned_rows", top_k),
                                s("server.address", "qdrant.vector.svc"),
                                i("server.port", 6333),
                            ],
                        );
                    }
                }
                2..=3 => {
                    let tool = *pick(rng, TOOLS);
                    let call = format!("call_{:024x}", rng.u128(..1 << 96));
                    self.span(
                        Some(agent),
                        format!("execute_tool {tool}"),
                        span::SpanKind::Internal,
                        at * MS,
                        dur * MS,
                        vec![
                            s("gen_ai.operation.name", "execute_tool"),
                            s("gen_ai.tool.name", tool),
                            s("gen_ai.tool.call.id", call),
                            s("gen_ai.tool.type", "function"),
                        ],
                    );
                }
                _ => {
                    let (provider, model) = *pick(rng, MODELS);
                    let input = i64::from(rng.u32(200..12_000));
                    let output = i64::from(rng.u32(5..1_500));
                    let finish = if rng.u8(0..10) < 7 {
                        "stop"
                    } else {
                        "tool_calls"
                    };
                    let temperature = f64::from(rng.u8(0..11)) / 10.0;
                    let response_id = format!("chatcmpl-{:016x}", rng.u64(..));
                    let fails = rng.f64() < self.error_rate;
                    self.span(
                        Some(agent),
                        format!("chat {model}"),
                        span::SpanKind::Client,
                        at * MS,
                        dur * MS,
                        vec![
                            s("gen_ai.operation.name", "chat"),
                            s("gen_ai.provider.name", provider),
                            s("gen_ai.request.model", model),
                            s("gen_ai.response.model", model),
                            i("gen_ai.request.max_tokens", 2048),
                            f("gen_ai.request.temperature", temperature),
                            f("gen_ai.request.top_p", 0.95),
                            i("gen_ai.usage.input_tokens", input),
                            i("gen_ai.usage.output_tokens", output),
                            strings("gen_ai.response.finish_reasons", &[finish]),
                            s("gen_ai.response.id", response_id),
                            s("server.address", "vllm.inference.svc"),
                            i("server.port", 8000),
                        ],
                    );
                    if fails {
                        self.fail_last();
                    }
                }
            }
            at = at.saturating_sub(dur + 5);
        }
    }
}

/// A traces request of exactly `items` spans, grouped in agent-invocation traces.
pub fn traces(
    mut b: TemplateBuilder,
    items: usize,
    error_rate: f64,
) -> Result<Template, TemplateError> {
    let res = resource(b.rng());
    let mut spans = Vec::with_capacity(items);
    let (mut next_id, mut trace_k) = (0u32, 0u32);
    while spans.len() < items {
        let trace = trace_k;
        trace_k += 1;
        let budget = items - spans.len();
        TraceShape {
            b: &mut b,
            spans: &mut spans,
            next_id: &mut next_id,
            trace,
            error_rate,
            last_end_ago: 0,
        }
        .build(budget);
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(res),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope("opentelemetry.instrumentation.openai_v2")),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    b.finish(request.encode_to_vec(), items as u64)
}

#[cfg(test)]
mod tests {
    use super::super::vocab::attr;
    use super::*;
    use crate::ids::IdSource;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use std::collections::{HashMap, HashSet};

    fn render_traces(template: &Template, ids: &IdSource) -> (ExportTraceServiceRequest, Vec<u64>) {
        let mut own = Vec::new();
        let block = ids.reserve(template.id_count());
        let bytes = template.render(&block, 1_800_000_000_000_000_000, &mut own);
        (
            ExportTraceServiceRequest::decode(bytes).expect("decodes"),
            own,
        )
    }
    #[test]
    fn a_traces_request_holds_exactly_the_batch_in_well_formed_traces() {
        for items in [1usize, 7, 100, 333] {
            let template =
                traces(TemplateBuilder::new(items as u64), items, 0.05).expect("template");
            let (req, own) = render_traces(&template, &IdSource::new(5));
            let spans = &req.resource_spans[0].scope_spans[0].spans;
            assert_eq!(spans.len(), items);
            assert_eq!(own.len(), items, "one own id per span");
            let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (&s.span_id[..], s)).collect();
            assert_eq!(by_id.len(), items, "span ids unique");
            for span in spans {
                assert_eq!(span.trace_id.len(), 16);
                assert!(
                    span.start_time_unix_nano <= span.end_time_unix_nano,
                    "{}",
                    span.name
                );
                assert!(span.end_time_unix_nano <= 1_800_000_000_000_000_000);
                if !span.parent_span_id.is_empty() {
                    let parent = by_id
                        .get(&span.parent_span_id[..])
                        .expect("parent in the request");
                    assert_eq!(parent.trace_id, span.trace_id, "parent in the same trace");
                }
            }
        }
    }

    #[test]
    fn model_calls_carry_gen_ai_token_counts_and_errors_follow_the_rate() {
        let ids = IdSource::new(1);
        let none = traces(TemplateBuilder::new(1), 500, 0.0).expect("template");
        let all = traces(TemplateBuilder::new(1), 500, 1.0).expect("template");
        let (calm, _) = render_traces(&none, &ids);
        let (failing, _) = render_traces(&all, &ids);
        let chats = |req: &ExportTraceServiceRequest| -> Vec<Span> {
            req.resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .filter(|s| s.name.starts_with("chat "))
                .cloned()
                .collect()
        };
        let calm_chats = chats(&calm);
        assert!(!calm_chats.is_empty());
        for span in &calm_chats {
            assert!(
                matches!(attr(&span.attributes, "gen_ai.usage.input_tokens"), Some(any_value::Value::IntValue(n)) if *n > 0)
            );
            assert!(matches!(
                attr(&span.attributes, "gen_ai.usage.output_tokens"),
                Some(any_value::Value::IntValue(_))
            ));
            assert!(attr(&span.attributes, "gen_ai.request.model").is_some());
            assert_ne!(
                span.status.as_ref().map(|s| s.code),
                Some(status::StatusCode::Error as i32)
            );
        }
        for span in chats(&failing) {
            assert_eq!(
                span.status.as_ref().map(|s| s.code),
                Some(status::StatusCode::Error as i32)
            );
            assert!(attr(&span.attributes, "error.type").is_some());
            assert_eq!(span.events[0].name, "exception");
        }
        let names: HashSet<&str> = calm.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .filter_map(|s| s.name.split(' ').next())
            .collect();
        for kind in [
            "POST",
            "invoke_agent",
            "chat",
            "execute_tool",
            "embeddings",
            "search",
        ] {
            assert!(names.contains(kind), "{kind} spans in {names:?}");
        }
    }

    #[test]
    fn two_renders_of_one_template_share_no_id() {
        let template = traces(TemplateBuilder::new(2), 100, 0.05).expect("template");
        let ids = IdSource::new(3);
        let (a, own_a) = render_traces(&template, &ids);
        let (b, own_b) = render_traces(&template, &ids);
        let set: HashSet<u64> = own_a.iter().chain(&own_b).copied().collect();
        assert_eq!(set.len(), 200);
        let traces_of = |r: &ExportTraceServiceRequest| -> HashSet<Vec<u8>> {
            r.resource_spans[0].scope_spans[0]
                .spans
                .iter()
                .map(|s| s.trace_id.clone())
                .collect()
        };
        assert!(traces_of(&a).is_disjoint(&traces_of(&b)));
    }
}
