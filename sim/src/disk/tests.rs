//! Unit tests of the simulated disk: each fault in isolation, the crash modes, the
//! directory semantics of remove and replace, and determinism.

use super::*;

fn disk() -> SimDisk {
    SimDisk::new(1, DiskFaults::default())
}

fn with(faults: DiskFaults) -> SimDisk {
    SimDisk::new(1, faults)
}

fn read_all(d: &SimDisk, file: &str) -> Vec<u8> {
    d.read_at(file, 0, usize::MAX).unwrap().to_vec()
}

/// A synced file `f` holding `durable`, then `pending` appended and not synced.
fn synced_then_pending(seed: u64, durable: &[u8], pending: &[u8]) -> SimDisk {
    let d = SimDisk::new(seed, DiskFaults::default());
    d.append("t-0/f", &[durable]).unwrap();
    d.sync("t-0/f").unwrap();
    d.append("t-0/f", &[pending]).unwrap();
    d
}

#[test]
fn reads_see_pending_writes_like_a_page_cache() {
    let d = disk();
    d.append("a/f", &[b"he", b"llo"]).unwrap();
    assert_eq!(&d.read_at("a/f", 1, 3).unwrap()[..], b"ell");
    assert_eq!(&d.read_at("a/f", 3, 100).unwrap()[..], b"lo");
    assert_eq!(d.read_at("a/f", 100, 1).unwrap().len(), 0);
    assert_eq!(d.len("a/f").unwrap(), Some(5));
    assert_eq!(d.durable_len("a/f"), None, "never synced");
    assert_eq!(d.pending_len("a/f"), 5);
    d.sync("a/f").unwrap();
    assert_eq!((d.durable_len("a/f"), d.pending_len("a/f")), (Some(5), 0));
    d.truncate("a/f", 2).unwrap();
    assert_eq!(d.len("a/f").unwrap(), Some(2));
    assert_eq!(d.durable_len("a/f"), Some(5), "a truncate is pending too");
    assert_eq!(
        d.read_at("nope", 0, 1).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        d.truncate("nope", 0).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(d.sync("nope").unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(d.len("nope").unwrap(), None);
    d.remove("nope").unwrap();
    d.check();
}

#[test]
fn list_shows_direct_children_sorted_like_mem_storage() {
    let d = disk();
    let mem = keel_core::storage::MemStorage::new();
    for name in ["b-0/1.log", "a-0/2.log", "a-0/1.log", "meta", "a-0b"] {
        d.append(name, &[b"x"]).unwrap();
        mem.append(name, &[b"x"]).unwrap();
    }
    d.remove("a-0/2.log").unwrap();
    mem.remove("a-0/2.log").unwrap();
    for dir in ["", "a-0", "a-0/", "b-0", "none"] {
        assert_eq!(d.list(dir).unwrap(), mem.list(dir).unwrap(), "dir {dir:?}");
    }
    assert_eq!(d.list("").unwrap(), vec!["a-0", "a-0b", "b-0", "meta"]);
    assert_eq!(d.list("a-0").unwrap(), vec!["1.log"]);
    assert_eq!(d.files(), vec!["a-0/1.log", "a-0b", "b-0/1.log", "meta"]);
}

#[test]
fn crash_lose_all_keeps_exactly_the_synced_bytes() {
    let d = synced_then_pending(1, b"durable", b"-pending");
    d.truncate("t-0/f", 3).unwrap();
    d.append("t-0/f", &[b"!"]).unwrap();
    let events = d.crash(CrashLoss::LoseAll);
    assert_eq!(
        events,
        vec![DiskEvent::CrashLost {
            file: "t-0/f".into(),
            bytes: 8 + 1 + 1
        }]
    );
    assert_eq!(read_all(&d, "t-0/f"), b"durable");
    assert_eq!(
        (d.durable_len("t-0/f"), d.pending_len("t-0/f")),
        (Some(7), 0)
    );
    assert_eq!(d.take_events(), events, "crash events are in the log too");
    assert_eq!(d.stats().crashes, 1);
    d.check();
}

#[test]
fn crash_keep_all_keeps_everything_even_never_synced_files() {
    let d = synced_then_pending(1, b"durable", b"-pending");
    d.append("t-0/new", &[b"fresh"]).unwrap();
    let events = d.crash(CrashLoss::KeepAll);
    assert_eq!(
        events,
        vec![
            DiskEvent::CrashKept {
                file: "t-0/f".into(),
                bytes: 8
            },
            DiskEvent::CrashKept {
                file: "t-0/new".into(),
                bytes: 1 + 5
            },
        ]
    );
    assert_eq!(read_all(&d, "t-0/f"), b"durable-pending");
    assert_eq!(read_all(&d, "t-0/new"), b"fresh");
    assert_eq!(
        d.durable_len("t-0/new"),
        Some(5),
        "after a crash, what is there is durable"
    );
}

#[test]
fn crash_tears_a_small_write_at_every_byte_and_only_as_a_prefix() {
    let durable = b"0123";
    let pending = b"abcdef";
    let mut seen = BTreeSet::new();
    for seed in 0..400 {
        let d = synced_then_pending(seed, durable, pending);
        let events = d.crash(CrashLoss::TearAnywhere);
        let after = read_all(&d, "t-0/f");
        assert!(after.len() >= durable.len(), "synced bytes survive");
        let kept = after.len() - durable.len();
        assert_eq!(&after[..4], durable);
        assert_eq!(&after[4..], &pending[..kept], "a torn write keeps a prefix");
        let expect = match kept {
            0 => DiskEvent::CrashLost {
                file: "t-0/f".into(),
                bytes: 6,
            },
            6 => DiskEvent::CrashKept {
                file: "t-0/f".into(),
                bytes: 6,
            },
            k => DiskEvent::CrashTorn {
                file: "t-0/f".into(),
                kept: k as u64,
                lost: 6 - k as u64,
            },
        };
        assert_eq!(events, vec![expect]);
        seen.insert(kept);
    }
    assert_eq!(seen, (0..=6).collect(), "every cut point occurs");
}

#[test]
fn mixed_chooses_per_file() {
    let mut modes = BTreeSet::new();
    for seed in 0..50 {
        let d = SimDisk::new(seed, DiskFaults::default());
        for i in 0..4 {
            let name = format!("t-0/{i}");
            d.append(&name, &[b"x"]).unwrap();
            d.sync(&name).unwrap();
            d.append(&name, &[b"0123456789"]).unwrap();
        }
        for e in d.crash(CrashLoss::Mixed) {
            modes.insert(match e {
                DiskEvent::CrashLost { .. } => "lost",
                DiskEvent::CrashKept { .. } => "kept",
                DiskEvent::CrashTorn { .. } => "torn",
                other => panic!("unexpected {other}"),
            });
        }
        for i in 0..4 {
            assert_eq!(read_all(&d, &format!("t-0/{i}"))[0], b'x');
        }
    }
    assert_eq!(modes.len(), 3);
}

#[test]
fn never_synced_files_vanish_and_synced_siblings_stay() {
    let d = disk();
    d.append("t-0/old", &[b"kept"]).unwrap();
    d.sync("t-0/old").unwrap();
    d.append("t-0/new", &[b"gone"]).unwrap();
    d.append("t-0/empty", &[]).unwrap();
    assert_eq!(d.list("t-0").unwrap(), vec!["empty", "new", "old"]);
    let events = d.crash(CrashLoss::LoseAll);
    assert_eq!(
        events,
        vec![
            DiskEvent::CrashVanished {
                file: "t-0/empty".into()
            },
            DiskEvent::CrashVanished {
                file: "t-0/new".into()
            },
        ]
    );
    assert_eq!(d.list("t-0").unwrap(), vec!["old"]);
    assert_eq!(d.len("t-0/new").unwrap(), None);
    assert_eq!(read_all(&d, "t-0/old"), b"kept");
    // Torn: the file survives only if the cut reaches its creation.
    for seed in 0..50 {
        let d = SimDisk::new(seed, DiskFaults::default());
        d.append("t-0/new", &[b"ab"]).unwrap();
        let events = d.crash(CrashLoss::TearAnywhere);
        match d.contents("t-0/new") {
            None => assert!(matches!(events[0], DiskEvent::CrashVanished { .. })),
            Some(c) => assert!(b"ab".starts_with(&c)),
        }
    }
}

#[test]
fn a_file_synced_once_keeps_its_entry_even_when_empty() {
    let d = disk();
    d.append("t-0/f", &[]).unwrap();
    d.sync("t-0/f").unwrap();
    d.append("t-0/f", &[b"lost"]).unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.len("t-0/f").unwrap(), Some(0));
}

#[test]
fn failed_fsync_drops_the_pages_and_a_later_sync_does_not_bring_them_back() {
    let d = synced_then_pending(1, b"safe", b"doomed");
    d.set_faults(DiskFaults {
        fsync_error_probability: 1.0,
        ..DiskFaults::default()
    });
    let err = d.sync("t-0/f").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO");
    assert_eq!(
        d.take_events(),
        vec![DiskEvent::SyncFailed {
            file: "t-0/f".into()
        }]
    );
    assert_eq!(d.stats().failed_syncs, 1);
    assert_eq!(d.durable_len("t-0/f"), Some(4), "not made durable");
    // The kernel dropped the pages: the data reads as the hole it is on the platter.
    assert_eq!(read_all(&d, "t-0/f"), b"safe\0\0\0\0\0\0");
    d.check();

    // Fsyncgate: the disk heals, the next sync succeeds, and the data is still gone.
    d.set_faults(DiskFaults::default());
    d.append("t-0/f", &[b"later"]).unwrap();
    d.sync("t-0/f").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(read_all(&d, "t-0/f"), b"safe\0\0\0\0\0\0later");
}

#[test]
fn failed_fsync_then_crash_loses_the_data_in_every_mode() {
    for loss in [
        CrashLoss::LoseAll,
        CrashLoss::KeepAll,
        CrashLoss::TearAnywhere,
        CrashLoss::Mixed,
    ] {
        for seed in 0..20 {
            let d = synced_then_pending(seed, b"safe", b"doomed");
            d.set_faults(DiskFaults {
                fsync_error_probability: 1.0,
                ..DiskFaults::default()
            });
            assert!(d.sync("t-0/f").is_err());
            d.crash(loss);
            let after = read_all(&d, "t-0/f");
            assert_eq!(&after[..4], b"safe", "synced data survives");
            assert!(
                after[4..].iter().all(|&b| b == 0),
                "{loss:?}: the failed data never reaches the platter"
            );
        }
    }
}

#[test]
fn enospc_writes_nothing_and_recovers_when_capacity_is_raised() {
    let d = with(DiskFaults {
        capacity_bytes: Some(10),
        ..DiskFaults::default()
    });
    d.append("t-0/f", &[b"12345678"]).unwrap();
    let err = d.append("t-0/f", &[b"ab", b"cd"]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28));
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(
        read_all(&d, "t-0/f"),
        b"12345678",
        "nothing partially written"
    );
    assert_eq!(d.pending_len("t-0/f"), 8);
    let err = d.replace("t-0/cp", b"xyz").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28));
    assert_eq!(d.len("t-0/cp").unwrap(), None);
    assert_eq!(
        d.append("t-0/g", &[b"abc"]).unwrap_err().raw_os_error(),
        Some(28)
    );
    assert_eq!(d.len("t-0/g").unwrap(), None, "no file created either");
    assert_eq!(
        d.take_events(),
        vec![
            DiskEvent::Full {
                file: "t-0/f".into(),
                needed: 4
            },
            DiskEvent::Full {
                file: "t-0/cp".into(),
                needed: 3
            },
            DiskEvent::Full {
                file: "t-0/g".into(),
                needed: 3
            },
        ]
    );
    assert_eq!(d.stats().enospc_refusals, 3);
    // Exactly full is fine; freeing space helps.
    d.append("t-0/f", &[b"ab"]).unwrap();
    d.truncate("t-0/f", 6).unwrap();
    d.append("t-0/f", &[b"cd"]).unwrap();
    assert_eq!(d.used_bytes(), 8);

    d.set_faults(DiskFaults {
        capacity_bytes: Some(100),
        ..DiskFaults::default()
    });
    d.append("t-0/f", &[b"ab", b"cd"]).unwrap();
    d.replace("t-0/cp", b"xyz").unwrap();
    assert_eq!(read_all(&d, "t-0/f"), b"123456cdabcd");
}

#[test]
fn the_volume_is_the_capacity_and_free_is_what_the_files_leave() {
    assert_eq!(
        disk().volume_bytes(),
        None,
        "no capacity: nothing to measure, no floor"
    );
    let d = with(DiskFaults {
        capacity_bytes: Some(100),
        ..DiskFaults::default()
    });
    assert_eq!(d.volume_bytes(), Some((100, 100)));
    // Pending bytes take room as on a real filesystem, where the page cache's dirty pages
    // are already allocated; a crash that loses them gives the room back.
    d.append("t-0/f", &[b"0123456789"]).unwrap();
    d.sync("t-0/f").unwrap();
    d.append("t-0/f", &[b"abcdefghij"]).unwrap();
    d.replace("t-0/cp", b"xyz").unwrap();
    assert_eq!(d.volume_bytes(), Some((100, 77)));
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.volume_bytes(), Some((100, 87)));
    d.truncate("t-0/f", 4).unwrap();
    d.remove("t-0/cp").unwrap();
    assert_eq!(d.volume_bytes(), Some((100, 96)));
    // Over capacity (it was lowered under the files): no room, not an underflow.
    d.set_faults(DiskFaults {
        capacity_bytes: Some(2),
        ..DiskFaults::default()
    });
    assert_eq!(d.volume_bytes(), Some((2, 0)));
    d.set_faults(DiskFaults {
        capacity_bytes: Some(1_000),
        ..DiskFaults::default()
    });
    assert_eq!(d.volume_bytes(), Some((1_000, 996)));
    // Lifting the capacity (a heal) leaves a measurable, roomy volume, so a node that was
    // in low space gets a sample that lets it out.
    d.set_faults(DiskFaults::default());
    assert_eq!(
        d.volume_bytes(),
        Some((UNBOUNDED_VOLUME_BYTES, UNBOUNDED_VOLUME_BYTES - 4))
    );
    // A capacity set only later makes a disk measurable from then on.
    let later = disk();
    later.set_faults(DiskFaults {
        capacity_bytes: Some(10),
        ..DiskFaults::default()
    });
    assert_eq!(later.volume_bytes(), Some((10, 10)));
}

#[test]
fn measuring_the_volume_draws_no_randomness() {
    let faults = DiskFaults {
        capacity_bytes: Some(1 << 20),
        misdirected_write_probability: 0.5,
        fsync_error_probability: 0.3,
        ..DiskFaults::default()
    };
    let run = |measure: bool| {
        let d = with(faults.clone());
        let mut seen = Vec::new();
        for i in 0..50u32 {
            if measure {
                seen.push(d.volume_bytes());
            }
            d.append("t-0/f", &[&i.to_le_bytes()]).unwrap();
            let _ = d.sync("t-0/f");
        }
        (d.contents("t-0/f"), d.take_events(), seen)
    };
    let (measured, measured_events, seen) = run(true);
    let (plain, plain_events, _) = run(false);
    assert_eq!(measured, plain);
    assert_eq!(measured_events, plain_events);
    assert_eq!(seen, run(true).2, "the same calls give the same samples");
}

#[test]
fn misdirected_appends_land_elsewhere_and_are_reported() {
    let mut over = 0;
    let mut past = 0;
    for seed in 0..100 {
        let d = SimDisk::new(seed, DiskFaults::default());
        d.append("t-0/f", &[b"abcdefgh"]).unwrap();
        d.set_faults(DiskFaults {
            misdirected_write_probability: 1.0,
            ..DiskFaults::default()
        });
        d.append("t-0/f", &[b"XY", b"Z"]).unwrap();
        let events = d.take_events();
        let [DiskEvent::Misdirected {
            file,
            intended,
            actual,
        }] = &events[..]
        else {
            panic!("one misdirected write expected, got {events:?}");
        };
        assert_eq!((file.as_str(), *intended), ("t-0/f", 8));
        assert_ne!(*actual, 8);
        let after = read_all(&d, "t-0/f");
        // Detectable: the bytes are not where the caller thinks they are.
        assert_ne!(after, b"abcdefghXYZ");
        let a = *actual as usize;
        assert_eq!(&after[a..a + 3], b"XYZ", "the data landed at `actual`");
        if a < 8 {
            over += 1;
            assert_eq!(after.len(), 8.max(a + 3));
            assert_eq!(&after[..a], &b"abcdefgh"[..a]);
        } else {
            past += 1;
            assert!(after[8..a].iter().all(|&b| b == 0), "a hole of zeros");
        }
        assert_eq!(d.stats().misdirected_writes, 1);
        d.check();
    }
    assert!(over > 10 && past > 10, "both kinds occur: {over} {past}");
    // Never a replace.
    let d = with(DiskFaults {
        misdirected_write_probability: 1.0,
        ..DiskFaults::default()
    });
    d.replace("t-0/cp", b"checkpoint").unwrap();
    d.replace("t-0/cp", b"checkpoint2").unwrap();
    assert_eq!(read_all(&d, "t-0/cp"), b"checkpoint2");
    assert!(d.take_events().is_empty());
}

#[test]
fn misdirected_holes_respect_capacity() {
    for seed in 0..50 {
        let d = SimDisk::new(seed, DiskFaults::default());
        d.append("t-0/f", &[b"abcdefgh"]).unwrap();
        d.set_faults(DiskFaults {
            misdirected_write_probability: 1.0,
            capacity_bytes: Some(12),
            ..DiskFaults::default()
        });
        d.append("t-0/f", &[b"XY"]).unwrap();
        assert!(d.used_bytes() <= 12);
        assert_eq!(d.stats().misdirected_writes, 1);
    }
}

#[test]
fn read_errors_are_transient() {
    let d = with(DiskFaults {
        read_error_probability: 0.5,
        ..DiskFaults::default()
    });
    d.append("t-0/f", &[b"hello"]).unwrap();
    let mut failed = 0;
    for _ in 0..100 {
        match d.read_at("t-0/f", 1, 3) {
            Ok(b) => assert_eq!(&b[..], b"ell"),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(5));
                failed += 1;
            }
        }
    }
    assert!((20..80).contains(&failed), "{failed} of 100 failed");
    assert_eq!(d.stats().read_errors, failed);
    let events = d.take_events();
    assert_eq!(events.len() as u64, failed);
    assert!(events.iter().all(|e| *e
        == DiskEvent::ReadFailed {
            file: "t-0/f".into(),
            pos: 1
        }));
    // An empty read touches no sector; a healed disk reads.
    d.set_faults(DiskFaults {
        read_error_probability: 1.0,
        ..DiskFaults::default()
    });
    assert!(d.read_at("t-0/f", 5, 10).unwrap().is_empty());
    assert!(d.read_at("t-0/f", 0, 1).is_err());
    d.set_faults(DiskFaults::default());
    assert_eq!(read_all(&d, "t-0/f"), b"hello");
    assert_eq!(d.durable_len("t-0/f"), None, "reads change nothing");
}

#[test]
fn a_bit_flip_changes_exactly_one_bit_of_durable_data() {
    for seed in 0..50 {
        let d = SimDisk::new(seed, DiskFaults::default());
        d.append("t-0/0.log", &[b"segment data"]).unwrap();
        d.sync("t-0/0.log").unwrap();
        d.append("t-0/0.log", &[b"+pending"]).unwrap();
        d.replace("t-0/log-checkpoint", b"cp").unwrap();
        d.append("t-0/1.log", &[b"never synced"]).unwrap();
        let before = d.durable_contents("t-0/0.log").unwrap();
        let event = d.flip_bit_at_rest(|name| name.ends_with(".log")).unwrap();
        let DiskEvent::BitFlip { file, pos, bit } = &event else {
            panic!("{event:?}");
        };
        assert_eq!(file, "t-0/0.log", "only durable data of matching files");
        let after = d.durable_contents("t-0/0.log").unwrap();
        let diff: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        assert_eq!(diff, vec![*pos as usize]);
        assert_eq!(before[diff[0]] ^ after[diff[0]], 1 << bit);
        assert_eq!(
            &read_all(&d, "t-0/0.log")[..12],
            &after[..],
            "reads see the flip"
        );
        assert_eq!(&read_all(&d, "t-0/0.log")[12..], b"+pending");
        assert_eq!(read_all(&d, "t-0/log-checkpoint"), b"cp");
        assert_eq!(d.take_events(), vec![event]);
        d.check();
    }
    let d = disk();
    d.append("t-0/0.log", &[b"not durable"]).unwrap();
    d.replace("t-0/cp", b"cp").unwrap();
    assert_eq!(d.flip_bit_at_rest(|n| n.ends_with(".log")), None);
    assert_eq!(d.stats().bit_flips, 0);
}

#[test]
fn remove_is_durable_only_once_the_directory_is_fsynced() {
    // Not yet: a crash brings the file back with its durable bytes.
    let d = disk();
    d.append("t-0/a", &[b"old"]).unwrap();
    d.sync("t-0/a").unwrap();
    d.remove("t-0/a").unwrap();
    assert_eq!(d.len("t-0/a").unwrap(), None);
    assert!(d.list("t-0").unwrap().is_empty());
    assert_eq!(d.sync("t-0/a").unwrap_err().kind(), io::ErrorKind::NotFound);
    d.crash(CrashLoss::LoseAll);
    assert_eq!(read_all(&d, "t-0/a"), b"old");
    d.remove("t-0/a").unwrap();
    d.crash(CrashLoss::KeepAll);
    assert_eq!(d.len("t-0/a").unwrap(), None);

    // A replace in the same directory fsyncs it.
    let d = disk();
    d.append("t-0/a", &[b"old"]).unwrap();
    d.sync("t-0/a").unwrap();
    d.remove("t-0/a").unwrap();
    d.replace("t-0/cp", b"1").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.list("t-0").unwrap(), vec!["cp"]);

    // So does the sync of a file created in it; a replace elsewhere does not.
    let d = disk();
    d.append("t-0/a", &[b"old"]).unwrap();
    d.sync("t-0/a").unwrap();
    d.remove("t-0/a").unwrap();
    d.replace("u-0/cp", b"1").unwrap();
    d.append("t-0/b", &[b"new"]).unwrap();
    d.sync("t-0/b").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.list("t-0").unwrap(), vec!["b"]);

    // So does the sync of any other file in it after the removal (as in FsStorage): a
    // removal dirties its directory like a creation does.
    let d = disk();
    for f in ["t-0/a", "t-0/b"] {
        d.append(f, &[b"old"]).unwrap();
        d.sync(f).unwrap();
    }
    d.remove("t-0/a").unwrap();
    d.append("t-0/b", &[b"+"]).unwrap();
    d.sync("t-0/b").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.list("t-0").unwrap(), vec!["b"]);

    // Without any later sync in that directory, a crash brings the removed file back.
    let d = disk();
    for f in ["t-0/a", "u-0/b"] {
        d.append(f, &[b"old"]).unwrap();
        d.sync(f).unwrap();
    }
    d.remove("t-0/a").unwrap();
    d.append("u-0/b", &[b"+"]).unwrap();
    d.sync("u-0/b").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.list("t-0").unwrap(), vec!["a"]);
}

#[test]
fn a_removed_and_recreated_file_is_new_after_the_directory_sync() {
    let setup = || {
        let d = disk();
        d.append("t-0/a", &[b"old"]).unwrap();
        d.sync("t-0/a").unwrap();
        d.remove("t-0/a").unwrap();
        d.append("t-0/a", &[b"new"]).unwrap();
        assert_eq!(read_all(&d, "t-0/a"), b"new");
        d.check();
        d
    };
    // Without a directory fsync the old file comes back.
    let d = setup();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(read_all(&d, "t-0/a"), b"old");
    // With one, the removal is durable and the new entry is not.
    let d = setup();
    d.replace("t-0/cp", b"1").unwrap();
    assert_eq!(d.durable_len("t-0/a"), None);
    assert_eq!(read_all(&d, "t-0/a"), b"new");
    d.check();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(d.len("t-0/a").unwrap(), None);
}

#[test]
fn replace_is_atomic_and_durable() {
    let d = disk();
    d.replace("t-0/cp", b"first").unwrap();
    assert_eq!(d.durable_len("t-0/cp"), Some(5));
    d.crash(CrashLoss::LoseAll);
    assert_eq!(read_all(&d, "t-0/cp"), b"first");
    d.replace("t-0/cp", b"second!").unwrap();
    d.crash(CrashLoss::LoseAll);
    assert_eq!(read_all(&d, "t-0/cp"), b"second!");
    assert_eq!(d.stats().syncs, 2);

    // A failed replace leaves the old or the new contents after any crash, never a mix.
    let mut outcomes = BTreeSet::new();
    for seed in 0..100 {
        let d = SimDisk::new(seed, DiskFaults::default());
        d.replace("t-0/cp", b"old").unwrap();
        d.set_faults(DiskFaults {
            fsync_error_probability: 1.0,
            ..DiskFaults::default()
        });
        assert_eq!(
            d.replace("t-0/cp", b"brand new")
                .unwrap_err()
                .raw_os_error(),
            Some(5)
        );
        let seen = read_all(&d, "t-0/cp");
        assert!(seen == b"old" || seen == b"brand new");
        d.set_faults(DiskFaults::default());
        d.crash(CrashLoss::TearAnywhere);
        let after = read_all(&d, "t-0/cp");
        assert!(after == b"old" || after == b"brand new", "{after:?}");
        outcomes.insert((seen, after));
    }
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

#[test]
fn sync_latency_is_drawn_from_the_range() {
    let d = with(DiskFaults {
        sync_latency_ms: (2, 5),
        ..DiskFaults::default()
    });
    let seen: BTreeSet<u128> = (0..100).map(|_| d.sync_latency().as_millis()).collect();
    assert_eq!(seen, (2..=5).collect());
    assert_eq!(disk().sync_latency(), Duration::ZERO);
}

#[test]
fn faults_deserialize_from_toml_with_defaults() {
    let f: DiskFaults = toml::from_str(
        "fsync_error_probability = 0.01\ncapacity_bytes = 1000\nsync_latency_ms = [1, 20]",
    )
    .unwrap();
    assert_eq!(
        f,
        DiskFaults {
            fsync_error_probability: 0.01,
            capacity_bytes: Some(1000),
            sync_latency_ms: (1, 20),
            ..DiskFaults::default()
        }
    );
    assert!(toml::from_str::<DiskFaults>("fsync_probability = 1.0").is_err());
    #[derive(serde::Deserialize)]
    struct L {
        loss: CrashLoss,
    }
    let l: L = toml::from_str("loss = \"TearAnywhere\"").unwrap();
    assert_eq!(l.loss, CrashLoss::TearAnywhere);
    let l: L = toml::from_str("loss = \"lose_all\"").unwrap();
    assert_eq!(l.loss, CrashLoss::LoseAll);
}

/// Everything a run lets one observe: events, files and their contents, counters.
type Observed = (Vec<DiskEvent>, Vec<(String, Option<Vec<u8>>)>, DiskStats);

/// A fixed workload over a disk with every fault on.
fn faulty_run(seed: u64) -> Observed {
    let d = SimDisk::new(
        seed,
        DiskFaults {
            fsync_error_probability: 0.1,
            read_error_probability: 0.1,
            misdirected_write_probability: 0.1,
            capacity_bytes: Some(4000),
            sync_latency_ms: (1, 10),
        },
    );
    let mut latencies = Vec::new();
    for i in 0..300u64 {
        let file = format!("t-{}/{}", i % 3, i % 5);
        let data = vec![i as u8; (i % 17) as usize];
        let _ = d.append(&file, &[&data]);
        if i % 4 == 0 {
            let _ = d.sync(&file);
            latencies.push(d.sync_latency());
        }
        if i % 7 == 0 {
            let _ = d.read_at(&file, i % 11, 5);
        }
        if i % 13 == 0 {
            let _ = d.truncate(&file, i % 29);
        }
        if i % 31 == 0 {
            let _ = d.replace(&format!("t-{}/cp", i % 3), &i.to_be_bytes());
        }
        if i % 41 == 0 {
            let _ = d.remove(&file);
        }
        if i % 50 == 0 {
            d.flip_bit_at_rest(|_| true);
        }
        if i % 97 == 0 {
            d.crash(CrashLoss::Mixed);
        }
        d.check();
    }
    let mut files = Vec::new();
    for dir in d.list("").unwrap() {
        for name in d.list(&dir).unwrap() {
            let file = format!("{dir}/{name}");
            files.push((file.clone(), d.contents(&file)));
        }
    }
    let mut events = d.take_events();
    events.push(DiskEvent::ReadFailed {
        file: format!("{latencies:?}"),
        pos: 0,
    });
    (events, files, d.stats())
}

#[test]
fn same_seed_same_faults() {
    let a = faulty_run(7);
    assert_eq!(a, faulty_run(7));
    assert_ne!(a.0, faulty_run(8).0);
    let stats = a.2;
    assert!(stats.failed_syncs > 0 && stats.read_errors > 0 && stats.misdirected_writes > 0);
    assert!(stats.bit_flips > 0 && stats.crashes > 0);
}
