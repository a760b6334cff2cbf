//! `GET /metrics`: the engine's figures for monitoring, in the Prometheus
//! text format (version 0.0.4), encoded by `prometheus-client`. Every
//! series carries the label `map`; the figures are read from the backend at
//! each scrape (nothing is kept between scrapes).
//!
//! | metric | type | what |
//! |---|---|---|
//! | `pauselog_map_state{map,state}` | gauge | 1 for the map's state (`Running`, `Paused`, `CatchingUp`), 0 for the others |
//! | `pauselog_map_blocked{map,limit}` | gauge | 1 when that cap (`Size`, `PauseAge`) blocks new records |
//! | `pauselog_queued_records{map}`, `pauselog_queued_bytes{map}` | gauge | the queue (R6) |
//! | `pauselog_oldest_queued_age_seconds{map}` | gauge | age of the oldest queued record, 0 when none |
//! | `pauselog_bytes_left{map}` | gauge | bytes left before the size cap |
//! | `pauselog_pause_time_left_seconds{map}` | gauge | time left before the pause-age cap (only while paused) |
//! | `pauselog_error_records{map}`, `pauselog_error_bytes{map}` | gauge | the catch-up errors |
//! | `pauselog_replayed_records{map}`, `pauselog_remaining_records{map}` | gauge | the current catch-up |
//! | `pauselog_drain_rate_records_per_second{map}` | gauge | its recent drain rate |
//! | `pauselog_lanes_busy{map}` | gauge | key lanes with a delivery in flight (R22) |
//! | `pauselog_passed_through_records_total{map}` | counter | records passed through live during catch-ups (R23) |
//! | `pauselog_submits_total{map,outcome}` | counter | `submit` calls by outcome: `live`, `queued`, `blocked`, `rejected`, `unavailable`, `invalid`, `failed` |
//! | `pauselog_fsync_duration_seconds{map,log}` | histogram | the fsyncs that made the data log's appends (`log="data"`) and the meta log's events (`log="meta"`) durable |
//!
//! Counters count since the map was opened in this process.

use crate::schema::MapStatus;

/// What a scrape shows of one map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapMetrics {
    /// The map's R9 figures.
    pub status: MapStatus,
    /// Its counters, when the backend keeps them.
    pub counters: Option<MapCounters>,
}

/// Counters of one map since it was opened.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MapCounters {
    /// `submit` calls by outcome.
    pub submits: SubmitOutcomes,
    /// The data log's fsyncs.
    pub data_fsync: LatencyHistogram,
    /// The meta log's fsyncs.
    pub meta_fsync: LatencyHistogram,
}

/// `submit` calls by outcome (each call counts once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitOutcomes {
    /// Delivered live (Running, or passed through a catch-up).
    pub live: u64,
    /// Queued.
    pub queued: u64,
    /// Refused by a cap.
    pub blocked: u64,
    /// Rejected by the destination.
    pub rejected: u64,
    /// The destination was unavailable and the record was not queued.
    pub unavailable: u64,
    /// Bad input.
    pub invalid: u64,
    /// Any other error.
    pub failed: u64,
}

impl SubmitOutcomes {
    /// Each outcome's label value and count.
    pub fn by_label(&self) -> [(&'static str, u64); 7] {
        [
            ("live", self.live),
            ("queued", self.queued),
            ("blocked", self.blocked),
            ("rejected", self.rejected),
            ("unavailable", self.unavailable),
            ("invalid", self.invalid),
            ("failed", self.failed),
        ]
    }
}

/// A latency histogram with fixed buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyHistogram {
    /// Upper bound of each bucket, in seconds, ascending.
    pub bounds_seconds: Vec<f64>,
    /// Observations per bucket (not cumulative): one entry per bound, and
    /// a last one for those above the last bound.
    pub counts: Vec<u64>,
    /// Sum of every observation, in seconds.
    pub sum_seconds: f64,
}

impl LatencyHistogram {
    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// The `Content-Type` of [`encode`]'s text.
#[cfg(feature = "server")]
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The maps' figures in the Prometheus text format.
///
/// ```
/// use pauselog_admin::metrics::{encode, MapMetrics};
/// # let status: pauselog_admin::schema::MapStatus = serde_json::from_str(r#"{
/// #   "name": "customers", "state": "Paused", "paused_since": "2026-01-01T08:00:00.000Z", "pause_reason": "Manual",
/// #   "pause_window": null, "blocked": null, "queued_records": 3, "queued_bytes": 120, "oldest_queued_age_ms": 1500,
/// #   "bytes_left": 1000, "pause_time_left_ms": 60000, "replayed": 0, "remaining": 0, "drain_rate_per_sec": 0.0,
/// #   "eta_ms": null, "error_records": 0, "error_bytes": 0, "last_error": null, "lanes_busy": 0, "passed_through": 0}"#).unwrap();
/// let text = encode(vec![MapMetrics { status, counters: None }])?;
/// assert!(text.contains("pauselog_queued_records{map=\"customers\"} 3\n"));
/// assert!(text.contains("pauselog_map_state{map=\"customers\",state=\"Paused\"} 1\n"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
#[cfg(feature = "server")]
pub fn encode(maps: Vec<MapMetrics>) -> Result<String, std::fmt::Error> {
    let mut registry = prometheus_client::registry::Registry::with_prefix("pauselog");
    registry.register_collector(Box::new(collect::Snapshot(maps)));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(feature = "server")]
mod collect {
    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;
    use prometheus_client::metrics::MetricType;
    use prometheus_client::registry::Unit;

    use super::{LatencyHistogram, MapMetrics};
    use crate::schema::{Limit, MapStateName, MapStatus};

    /// The figures of one scrape.
    #[derive(Debug)]
    pub(super) struct Snapshot(pub Vec<MapMetrics>);

    type Encoded = Result<(), std::fmt::Error>;

    fn seconds(ms: u64) -> f64 {
        ms as f64 / 1000.0
    }

    impl Snapshot {
        /// One gauge family with one series per map, or none when `value`
        /// has no figure for any map.
        fn gauge<N: EncodeGaugeValue>(
            &self,
            encoder: &mut DescriptorEncoder,
            name: &str,
            help: &str,
            unit: Option<Unit>,
            value: impl Fn(&MapStatus) -> Option<N>,
        ) -> Encoded {
            let series: Vec<(&str, N)> =
                self.0.iter().filter_map(|m| value(&m.status).map(|v| (m.status.name.as_str(), v))).collect();
            if series.is_empty() {
                return Ok(());
            }
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (map, value) in series {
                ConstGauge::new(value).encode(family.encode_family(&[("map", map)])?)?;
            }
            Ok(())
        }

        fn states(&self, encoder: &mut DescriptorEncoder) -> Encoded {
            let mut family = encoder.encode_descriptor(
                "map_state",
                "1 for the table map's state (Running, Paused, CatchingUp), 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            let states = [
                (MapStateName::Running, "Running"),
                (MapStateName::Paused, "Paused"),
                (MapStateName::CatchingUp, "CatchingUp"),
            ];
            for map in &self.0 {
                for (state, label) in states {
                    let labels = [("map", map.status.name.as_str()), ("state", label)];
                    ConstGauge::new(i64::from(map.status.state == state)).encode(family.encode_family(&labels)?)?;
                }
            }
            let mut family = encoder.encode_descriptor(
                "map_blocked",
                "1 when this cap (Size, PauseAge) blocks new records of the table map",
                None,
                MetricType::Gauge,
            )?;
            for map in &self.0 {
                for (limit, label) in [(Limit::Size, "Size"), (Limit::PauseAge, "PauseAge")] {
                    let labels = [("map", map.status.name.as_str()), ("limit", label)];
                    ConstGauge::new(i64::from(map.status.blocked == Some(limit)))
                        .encode(family.encode_family(&labels)?)?;
                }
            }
            Ok(())
        }

        fn figures(&self, encoder: &mut DescriptorEncoder) -> Encoded {
            self.gauge(encoder, "queued_records", "Records in the queue", None, |s| Some(s.queued_records))?;
            self.gauge(encoder, "queued_bytes", "Bytes of the queue, encoded as stored", None, |s| {
                Some(s.queued_bytes)
            })?;
            self.gauge(
                encoder,
                "oldest_queued_age",
                "Age of the oldest queued record, 0 when none",
                Some(Unit::Seconds),
                |s| Some(s.oldest_queued_age_ms.map_or(0.0, seconds)),
            )?;
            self.gauge(encoder, "bytes_left", "Bytes left before the size cap", None, |s| Some(s.bytes_left))?;
            self.gauge(
                encoder,
                "pause_time_left",
                "Time left before the pause-age cap (while paused)",
                Some(Unit::Seconds),
                |s| s.pause_time_left_ms.map(seconds),
            )?;
            self.gauge(encoder, "error_records", "Catch-up error entries", None, |s| Some(s.error_records))?;
            self.gauge(encoder, "error_bytes", "Bytes of the catch-up errors", None, |s| Some(s.error_bytes))?;
            self.gauge(encoder, "replayed_records", "Records replayed in the current catch-up", None, |s| {
                Some(s.replayed)
            })?;
            self.gauge(encoder, "remaining_records", "Records left to replay in the current catch-up", None, |s| {
                Some(s.remaining)
            })?;
            self.gauge(encoder, "drain_rate_records_per_second", "Recent drain rate of the catch-up", None, |s| {
                Some(s.drain_rate_per_sec)
            })?;
            self.gauge(encoder, "lanes_busy", "Key lanes with a delivery in flight", None, |s| Some(s.lanes_busy))
        }

        fn counters(&self, encoder: &mut DescriptorEncoder) -> Encoded {
            let mut family = encoder.encode_descriptor(
                "passed_through_records",
                "Records delivered live during catch-ups instead of queued, since the map was opened",
                None,
                MetricType::Counter,
            )?;
            for map in &self.0 {
                ConstCounter::new(map.status.passed_through)
                    .encode(family.encode_family(&[("map", map.status.name.as_str())])?)?;
            }
            let counted: Vec<_> =
                self.0.iter().filter_map(|m| Some((m.status.name.as_str(), m.counters.as_ref()?))).collect();
            if counted.is_empty() {
                return Ok(());
            }
            let mut family = encoder.encode_descriptor(
                "submits",
                "submit calls by outcome, since the map was opened",
                None,
                MetricType::Counter,
            )?;
            for (map, counters) in &counted {
                for (outcome, count) in counters.submits.by_label() {
                    ConstCounter::new(count).encode(family.encode_family(&[("map", *map), ("outcome", outcome)])?)?;
                }
            }
            let mut family = encoder.encode_descriptor(
                "fsync_duration",
                "Duration of the fsyncs that made a log's appends durable, since the map was opened",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (map, counters) in &counted {
                for (log, histogram) in [("data", &counters.data_fsync), ("meta", &counters.meta_fsync)] {
                    encode_histogram(family.encode_family(&[("map", *map), ("log", log)])?, histogram)?;
                }
            }
            Ok(())
        }
    }

    fn encode_histogram(
        mut encoder: prometheus_client::encoding::MetricEncoder,
        histogram: &LatencyHistogram,
    ) -> Encoded {
        let buckets: Vec<(f64, u64)> = histogram
            .bounds_seconds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(histogram.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            histogram.sum_seconds,
            histogram.count(),
            &buckets,
            None,
        )
    }

    impl Collector for Snapshot {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Encoded {
            self.states(&mut encoder)?;
            self.figures(&mut encoder)?;
            self.counters(&mut encoder)
        }
    }
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;

    fn status(name: &str) -> MapStatus {
        let example = include_str!("../../../docs/admin-api.md")
            .split("### GET /v1/maps/{map}\n")
            .nth(1)
            .and_then(|rest| rest.split("```json response\n").nth(1))
            .and_then(|rest| rest.split("```").next())
            .expect("the documented map status");
        let mut status: MapStatus = serde_json::from_str(example).expect("a map status");
        status.name = name.to_owned();
        status
    }

    #[test]
    fn counters_become_counters_and_a_cumulative_histogram() {
        let counters = MapCounters {
            submits: SubmitOutcomes { live: 7, queued: 3, blocked: 1, ..SubmitOutcomes::default() },
            data_fsync: LatencyHistogram { bounds_seconds: vec![0.001, 0.01], counts: vec![2, 3, 1], sum_seconds: 0.5 },
            meta_fsync: LatencyHistogram { bounds_seconds: vec![0.001, 0.01], counts: vec![0, 0, 0], sum_seconds: 0.0 },
        };
        let text = encode(vec![
            MapMetrics { status: status("customers"), counters: Some(counters) },
            MapMetrics { status: status("vendors"), counters: None },
        ])
        .expect("encodes");
        for line in [
            "# TYPE pauselog_submits_total counter",
            "pauselog_submits_total{map=\"customers\",outcome=\"live\"} 7",
            "pauselog_submits_total{map=\"customers\",outcome=\"blocked\"} 1",
            "pauselog_submits_total{map=\"customers\",outcome=\"failed\"} 0",
            "# TYPE pauselog_fsync_duration_seconds histogram",
            "pauselog_fsync_duration_seconds_bucket{map=\"customers\",log=\"data\",le=\"0.001\"} 2",
            "pauselog_fsync_duration_seconds_bucket{map=\"customers\",log=\"data\",le=\"0.01\"} 5",
            "pauselog_fsync_duration_seconds_bucket{map=\"customers\",log=\"data\",le=\"+Inf\"} 6",
            "pauselog_fsync_duration_seconds_sum{map=\"customers\",log=\"data\"} 0.5",
            "pauselog_fsync_duration_seconds_count{map=\"customers\",log=\"data\"} 6",
            "pauselog_queued_records{map=\"vendors\"} 200000",
            "pauselog_pause_time_left_seconds{map=\"vendors\"} 82800.0",
            "pauselog_map_state{map=\"vendors\",state=\"Paused\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("map=\"vendors\",outcome"), "a map without counters shows none");
    }
}
