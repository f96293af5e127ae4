//! An appliance that takes only so many calls at once: the service's adaptive limit finds
//! its capacity from the 503s it answers beyond it, and no item fails on the way.

use std::time::Duration;

use crate::helpers::*;
use darktrace_export::simulator::Faults;
use serde_json::{Value, json};

fn addresses(block: u8, n: usize) -> Value {
    json!(
        (0..n)
            .map(|i| json!({"type": "IP Address", "value": format!("45.{block}.{}.{}", i / 250, i % 250 + 1)}))
            .collect::<Vec<_>>()
    )
}

#[tokio::test]
async fn the_limit_settles_at_the_appliance_capacity_without_failing_items() {
    let sim = simulator().await;
    sim.record_calls(false);
    sim.set_faults(Faults {
        latency: Duration::from_millis(20),
        max_in_flight: 3,
        retry_after_secs: Some(0),
        ..Faults::default()
    });
    let mut config = config_for(&sim);
    quick_retries(&mut config);
    // The service's own retries, and a ceiling well above the capacity.
    config.darktrace.max_retries = 3;
    config.darktrace.concurrency = 8;
    config.darktrace.batch_size = 25;
    let app = spawn_with(sim, config).await;

    // 60 calls each: the first export finds the capacity, the second runs at it.
    let (status, report) = app.export_or_fail(&addresses(18, 1500)).await;
    assert_eq!(status, 200, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(report["summary"]["exported"], 1500);
    assert!(
        app.sim.overloaded() > 0,
        "the limit grew until the appliance refused calls"
    );

    app.sim.reset_max_in_flight();
    let (status, report) = app.export_or_fail(&addresses(19, 1500)).await;
    assert_eq!(status, 200, "{:#}", report["summary"]);
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(report["summary"]["exported"], 1500);
    let max = app.sim.max_in_flight();
    assert!(
        max <= 4,
        "{max} calls were in flight at once after settling; the capacity is 3"
    );
    assert_eq!(app.sim.with_store(|s| s.names(None).len()), 3000);
}
