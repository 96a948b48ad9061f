//! The columns a row repeats from its resource and scope group: the resource struct ([`ResourceColumn`]), the
//! scope struct ([`ScopeColumn`]), their schema URLs ([`GroupColumns`], for the spans and logs tables), and the
//! v2 leading columns ([`V2Columns`]: record id, time, date, service name). Attributes every row of a group
//! repeats are encoded once per group; `forget` ends that at the end of each request.

use deltalake::arrow::array::{
    ArrayRef, Date32Builder, Int32Builder, Int64Builder, NullBufferBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::DataType;
use otlake_core::proto::common::v1::{InstrumentationScope, any_value};
use otlake_core::proto::resource::v1::Resource;

use super::super::column::{ArrowResult, Column, child, finish_struct};
use super::super::presized::Presized;
use super::attrs::{AttrColumn, Encoding};

/// The v2 columns in front of every table (`record_id`, `time`, `date`, `service_name`) and the metrics
/// table's top-level `start_time_unix_nano` / `time_unix_nano`. Empty and unused for v1.
pub(crate) struct V2Columns {
    enabled: bool,
    record_id: Presized<StringBuilder>,
    time: Presized<TimestampMicrosecondBuilder>,
    date: Presized<Date32Builder>,
    service_name: Presized<StringBuilder>,
    start: Presized<Int64Builder>,
    point_time: Presized<Int64Builder>,
}

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

impl V2Columns {
    pub(crate) fn new(encoding: Encoding) -> Self {
        V2Columns {
            enabled: encoding == Encoding::Variant,
            record_id: Presized::default(),
            time: Presized::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            date: Presized::default(),
            service_name: Presized::default(),
            start: Presized::default(),
            point_time: Presized::default(),
        }
    }

    /// One row's leading columns: a fresh UUIDv7, the row's time (and its UTC date), `service.name`.
    pub(crate) fn append(&mut self, time_unix_nano: u64, resource: Option<&Resource>) {
        if !self.enabled {
            return;
        }
        let mut id = [0u8; 36];
        self.record_id
            .append_value(uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id));
        self.time
            .append_value((time_unix_nano / NANOS_PER_MICRO) as i64);
        self.date
            .append_value((time_unix_nano / NANOS_PER_DAY) as i32);
        let service = resource.and_then(|r| {
            r.attributes
                .iter()
                .rev()
                .find(|kv| kv.key == "service.name")
                .and_then(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                        _ => None,
                    },
                )
        });
        self.service_name.append_option(service);
    }

    /// The metrics table's top-level point times.
    pub(crate) fn append_point_times(&mut self, start: u64, time: u64) {
        if self.enabled {
            self.start.append_value(start as i64);
            self.point_time.append_value(time as i64);
        }
    }

    /// Adds the leading columns to a batch's named columns (v2 only).
    pub(crate) fn add<'a>(
        &'a mut self,
        columns: &mut Vec<(&'a str, &'a mut dyn Column)>,
        metrics: bool,
    ) {
        if !self.enabled {
            return;
        }
        columns.push(("record_id", &mut self.record_id));
        columns.push(("time", &mut self.time));
        columns.push(("date", &mut self.date));
        columns.push(("service_name", &mut self.service_name));
        if metrics {
            columns.push(("start_time_unix_nano", &mut self.start));
            columns.push(("time_unix_nano", &mut self.point_time));
        }
    }
}

/// The columns a row of the spans or logs table takes from its resource and scope group: `resource`,
/// `resource_schema_url`, `instrumentation_scope`, the item's schema URL (`span_schema_url`,
/// `log_schema_url`), and the v2 columns. One place for both tables and both readers (decoded and wire).
pub(crate) struct GroupColumns {
    resource: ResourceColumn,
    resource_schema_url: Presized<StringBuilder>,
    scope: ScopeColumn,
    item_schema_url: Presized<StringBuilder>,
    /// The name of the item's schema URL column.
    item_schema_url_name: &'static str,
    v2: V2Columns,
}

impl GroupColumns {
    pub(crate) fn new(encoding: Encoding, item_schema_url_name: &'static str) -> Self {
        GroupColumns {
            resource: ResourceColumn::new(encoding),
            resource_schema_url: Presized::default(),
            scope: ScopeColumn::new(encoding),
            item_schema_url: Presized::default(),
            item_schema_url_name,
            v2: V2Columns::new(encoding),
        }
    }

    /// The group columns of one row; `time` is the item's time for the v2 columns.
    pub(crate) fn append(
        &mut self,
        time: u64,
        resource: (Option<&Resource>, &str),
        scope: (Option<&InstrumentationScope>, &str),
        scratch: &mut String,
    ) {
        self.v2.append(time, resource.0);
        self.resource.append(resource.0, scratch);
        self.resource_schema_url.append_value(resource.1);
        self.scope.append(scope.0, scratch);
        self.item_schema_url.append_value(scope.1);
    }

    /// A resource group ended: forget the encoding kept for its `Resource` (keyed by its address).
    pub(crate) fn forget_resource(&mut self) {
        self.resource.forget();
    }

    /// A scope group ended: forget the encoding kept for its scope (keyed by its address).
    pub(crate) fn forget_scope(&mut self) {
        self.scope.forget();
    }

    /// Adds these columns, by name, to those a record batch is finished from.
    pub(crate) fn add<'a>(&'a mut self, columns: &mut Vec<(&'a str, &'a mut dyn Column)>) {
        columns.push(("resource", &mut self.resource));
        columns.push(("resource_schema_url", &mut self.resource_schema_url));
        columns.push(("instrumentation_scope", &mut self.scope));
        columns.push((self.item_schema_url_name, &mut self.item_schema_url));
        self.v2.add(columns, false);
    }
}

/// `R = STRUCT<attributes, dropped_attributes_count>`.
pub(crate) struct ResourceColumn {
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
    nulls: NullBufferBuilder,
}

impl ResourceColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        ResourceColumn {
            attributes: AttrColumn::new(encoding),
            dropped: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, resource: Option<&Resource>, scratch: &mut String) {
        match resource {
            Some(r) => {
                self.attributes.append_repeated(&r.attributes, scratch);
                self.dropped.append_value(r.dropped_attributes_count as i32);
                self.nulls.append_non_null();
            }
            None => {
                self.attributes.append_null();
                self.dropped.append_null();
                self.nulls.append_null();
            }
        }
    }
}

impl ResourceColumn {
    /// Call at the end of each request (see [`Repeat`](super::attrs::Repeat)).
    pub(crate) fn forget(&mut self) {
        self.attributes.forget();
    }
}

impl Column for ResourceColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.attributes.finish_as(child(f, 0)?)?,
                self.dropped.finish_as(child(f, 1)?)?,
            ])
        })
    }
}

/// `S = STRUCT<name, version, attributes, dropped_attributes_count>`.
pub(crate) struct ScopeColumn {
    name: Presized<StringBuilder>,
    version: Presized<StringBuilder>,
    attributes: AttrColumn,
    dropped: Presized<Int32Builder>,
    nulls: NullBufferBuilder,
}

impl ScopeColumn {
    pub(crate) fn new(encoding: Encoding) -> Self {
        ScopeColumn {
            name: Presized::default(),
            version: Presized::default(),
            attributes: AttrColumn::new(encoding),
            dropped: Presized::default(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub(crate) fn append(&mut self, scope: Option<&InstrumentationScope>, scratch: &mut String) {
        match scope {
            Some(s) => {
                self.name.append_value(&s.name);
                self.version.append_value(&s.version);
                self.attributes.append_repeated(&s.attributes, scratch);
                self.dropped.append_value(s.dropped_attributes_count as i32);
                self.nulls.append_non_null();
            }
            None => {
                self.name.append_null();
                self.version.append_null();
                self.attributes.append_null();
                self.dropped.append_null();
                self.nulls.append_null();
            }
        }
    }
}

impl ScopeColumn {
    /// Call at the end of each request (see [`Repeat`](super::attrs::Repeat)).
    pub(crate) fn forget(&mut self) {
        self.attributes.forget();
    }
}

impl Column for ScopeColumn {
    fn finish_as(&mut self, data_type: &DataType) -> ArrowResult<ArrayRef> {
        let nulls = self.nulls.finish();
        finish_struct(data_type, nulls, |f| {
            Ok(vec![
                self.name.finish_as(child(f, 0)?)?,
                self.version.finish_as(child(f, 1)?)?,
                self.attributes.finish_as(child(f, 2)?)?,
                self.dropped.finish_as(child(f, 3)?)?,
            ])
        })
    }
}
