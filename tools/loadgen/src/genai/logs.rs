//! Logs: the records of a model server beside the traces, one per request served (a completion summary at INFO,
//! or a failure at ERROR at the configured rate), each with a unique `log.record.uid` and trace context.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use prost::Message;

use super::vocab::{ERRORS, MODELS, MS, i, pick, resource, s, scope};
use crate::template::{Template, TemplateBuilder, TemplateError};

/// A logs request of exactly `items` records from a model server, each with a unique `log.record.uid`.
pub fn logs(
    mut b: TemplateBuilder,
    items: usize,
    error_rate: f64,
) -> Result<Template, TemplateError> {
    let res = resource(b.rng());
    let mut records = Vec::with_capacity(items);
    let mut next_id = 0u32;
    for k in 0..items {
        let uid = b.hex_id(next_id);
        next_id += 1;
        let trace = b.trace_id(k as u32);
        let span_id = b.span_id(next_id, false);
        next_id += 1;
        let ago = u64::from(b.rng().u32(0..2_000)) * MS;
        let time = b.time_ago(ago);
        let observed = b.time_ago(ago.saturating_sub(MS));
        let rng = b.rng();
        let (_, model) = *pick(rng, MODELS);
        let fails = rng.f64() < error_rate;
        let (severity, text, body, mut attributes) = if fails {
            let (kind, message) = *pick(rng, ERRORS);
            (
                SeverityNumber::Error,
                "ERROR",
                format!("request failed: {message}"),
                vec![s("error.type", kind), s("exception.message", message)],
            )
        } else {
            let (input, output) = (rng.u32(200..12_000), rng.u32(5..1_500));
            let latency = rng.u32(80..9_000);
            (
                SeverityNumber::Info,
                "INFO",
                format!(
                    "chat completion done model={model} prompt_tokens={input} completion_tokens={output} latency_ms={latency} queue_ms={}",
                    rng.u32(0..400)
                ),
                vec![
                    i("gen_ai.usage.input_tokens", i64::from(input)),
                    i("gen_ai.usage.output_tokens", i64::from(output)),
                ],
            )
        };
        attributes.extend([
            s("log.record.uid", uid),
            s("gen_ai.request.model", model),
            s(
                "code.function.name",
                "vllm.entrypoints.openai.serving_chat.chat_completion",
            ),
            i("thread.id", i64::from(rng.u16(..))),
        ]);
        records.push(LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: observed,
            severity_number: severity as i32,
            severity_text: text.to_owned(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(body)),
            }),
            attributes,
            flags: 1,
            trace_id: trace,
            span_id,
            ..Default::default()
        });
    }
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(res),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope("vllm.logger")),
                log_records: records,
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

    #[test]
    fn a_logs_request_has_a_unique_uid_per_record_matching_the_own_ids() {
        let template = logs(TemplateBuilder::new(4), 100, 0.1).expect("template");
        let mut own = Vec::new();
        let block = IdSource::new(8).reserve(template.id_count());
        let bytes = template.render(&block, 1_800_000_000_000_000_000, &mut own);
        let req = ExportLogsServiceRequest::decode(bytes).expect("decodes");
        let records = &req.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 100);
        let uids: Vec<String> = records
            .iter()
            .map(|r| match attr(&r.attributes, "log.record.uid") {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => panic!("uid {other:?}"),
            })
            .collect();
        let expected: Vec<String> = own.iter().map(|id| format!("{id:016x}")).collect();
        assert_eq!(uids, expected);
        for r in records {
            assert_eq!(r.trace_id.len(), 16);
            assert_eq!(r.span_id.len(), 8);
            assert!(r.observed_time_unix_nano >= r.time_unix_nano);
        }
    }
}
