//! R10, R11: the queued records are listed a page at a time in seq order;
//! following `next` visits every match exactly once, even while records are
//! appended and the head drains; a key filter lists only that key; `total`
//! is the map's (or the key's) queued count. The same shape lists errors.

use std::collections::HashSet;

use pauselog::{Error, MapConfig, Query, ResumeMode};
use pauselog_tests::*;

fn keyed(n: u64) -> String {
    format!("USMF|CUST-{:04}", n % 10)
}

#[test]
fn pages_cover_everything_once_with_totals() {
    let Fixture { map, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    for n in 1..=237 {
        map.submit(rec(&keyed(n), n)).unwrap();
    }
    let first = map.queued(&Query::default()).unwrap();
    assert_eq!((first.items.len(), first.total), (50, 237), "default page is 50");
    let mut seen = Vec::new();
    let mut query = Query::default().limit(40);
    loop {
        let page = map.queued(&query).unwrap();
        assert_eq!(page.total, 237);
        seen.extend(page.items.iter().map(|r| r.seq));
        match page.next {
            Some(next) => query = Query::default().limit(40).after(next),
            None => break,
        }
    }
    assert_eq!(seen, (1..=237).collect::<Vec<u64>>());
}

#[test]
fn key_filter_lists_only_that_key() {
    let Fixture { map, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    for n in 1..=200 {
        map.submit(rec(&keyed(n), n)).unwrap();
    }
    let key = keyed(3);
    let mut seqs = Vec::new();
    let mut query = Query::default().key(key.clone()).limit(7);
    loop {
        let page = map.queued(&query).unwrap();
        assert_eq!(page.total, 20, "total is the key's count");
        assert!(page.items.iter().all(|r| r.key == key));
        seqs.extend(page.items.iter().map(|r| r.seq));
        match page.next {
            Some(next) => query = Query::default().key(key.clone()).limit(7).after(next),
            None => break,
        }
    }
    assert_eq!(seqs, (1..=200).filter(|n| n % 10 == 3).collect::<Vec<u64>>());
    let none = map.queued(&Query::default().key("nobody")).unwrap();
    assert_eq!((none.items.len(), none.total, none.next), (0, 0, None));
}

#[test]
fn cursors_survive_appends_and_draining() {
    let fixture = Fixture::new(MapConfig { replay_batch_records: 5, ..MapConfig::default() });
    let (map, dest) = (&fixture.map, &fixture.dest);
    map.pause().unwrap();
    for n in 1..=100 {
        map.submit(rec(&keyed(n), n)).unwrap();
    }
    let page = map.queued(&Query::default().limit(10)).unwrap();
    let mut seen: Vec<u64> = page.items.iter().map(|r| r.seq).collect();
    // Appends at the tail between pages are visited too.
    for n in 101..=120 {
        map.submit(rec(&keyed(n), n)).unwrap();
    }
    let mut next = page.next;
    while let Some(cursor) = next {
        let page = map.queued(&Query::default().limit(10).after(cursor)).unwrap();
        seen.extend(page.items.iter().map(|r| r.seq));
        next = page.next;
    }
    assert_eq!(seen, (1..=120).collect::<Vec<u64>>());

    // While the head drains, a walk never repeats a seq and stays ascending.
    dest.close_gate();
    map.resume(ResumeMode::CatchUp).unwrap();
    let page = map.queued(&Query::default().limit(10)).unwrap();
    dest.open_gate();
    let mut walked: Vec<u64> = page.items.iter().map(|r| r.seq).collect();
    let mut next = page.next;
    while let Some(cursor) = next {
        let page = map.queued(&Query::default().limit(10).after(cursor)).unwrap();
        walked.extend(page.items.iter().map(|r| r.seq));
        next = page.next;
    }
    assert!(walked.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), walked.len());
    wait_running(map);
}

#[test]
fn malformed_cursor_is_a_clear_error() {
    let Fixture { map, .. } = &Fixture::new(MapConfig::default());
    map.pause().unwrap();
    for n in 1..=60 {
        map.submit(rec(&keyed(n), n)).unwrap();
    }
    let next = map.queued(&Query::default()).unwrap().next.unwrap();
    for bad in ["", "garbage", &next[..next.len() - 1], &format!("{next}0")] {
        assert!(matches!(map.queued(&Query::default().after(bad)), Err(Error::BadCursor(_))), "{bad:?}");
    }
    let mut tampered = next.clone().into_bytes();
    tampered[5] = if tampered[5] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(matches!(map.queued(&Query::default().after(tampered)), Err(Error::BadCursor(_))));
    let other_key = map.queued(&Query::default().key(keyed(1)).after(next));
    assert!(matches!(other_key, Err(Error::BadCursor(_))), "a cursor is bound to its filter");
}
