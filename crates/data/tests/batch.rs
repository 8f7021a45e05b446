use std::sync::Arc;

use nibble_data::{Batch, BatchCursor, Batcher, ValBatches};

/// Token i has value i, so every row tells where its window starts.
fn positions(n: u32) -> Arc<[u32]> {
    (0..n).collect()
}

fn take(b: &mut Batcher, n: usize) -> Vec<Batch> {
    (0..n).map(|_| b.next_batch()).collect()
}

/// Window start of every row, checking that rows are contiguous and targets are shifted inputs.
fn row_starts(batch: &Batch) -> Vec<u32> {
    assert_eq!(batch.inputs.len(), batch.rows * batch.seq_len);
    assert_eq!(batch.targets.len(), batch.rows * batch.seq_len);
    (0..batch.rows)
        .map(|r| {
            let inp = &batch.inputs[r * batch.seq_len..(r + 1) * batch.seq_len];
            let tgt = &batch.targets[r * batch.seq_len..(r + 1) * batch.seq_len];
            let s = inp[0];
            assert!(
                inp.iter().zip(s..).all(|(&a, b)| a == b),
                "row not contiguous"
            );
            assert!(
                tgt.iter().zip(s + 1..).all(|(&a, b)| a == b),
                "targets not shifted"
            );
            s
        })
        .collect()
}

#[test]
fn geometry_by_hand() {
    // 1000 tokens, seq_len 10: 99 windows fit at offset 0; one is kept as slack -> 98 per epoch,
    // offsets in 0..10 (slack 999 - 980 = 19 >= 9).
    let b = Batcher::new(positions(1000), 4, 10, 1).unwrap();
    assert_eq!(b.windows_per_epoch(), 98);
    // 25 tokens, seq_len 10: 2 windows fit, 1 kept, offsets up to 9 (slack 24 - 10 = 14).
    assert_eq!(
        Batcher::new(positions(25), 1, 10, 1)
            .unwrap()
            .windows_per_epoch(),
        1
    );
    // 11 tokens, seq_len 10: exactly one window, offset 0.
    let mut one = Batcher::new(positions(11), 3, 10, 1).unwrap();
    assert_eq!(row_starts(&one.next_batch()), vec![0, 0, 0]);
}

#[test]
fn each_epoch_visits_every_window_once_at_one_offset() {
    let seq = 10;
    let mut b = Batcher::new(positions(1000), 7, seq, 42).unwrap();
    let per_epoch = b.windows_per_epoch();
    // 7 * 98 rows = exactly 7 epochs (98 = 7 * 14).
    let starts: Vec<u32> = take(&mut b, 98).iter().flat_map(row_starts).collect();
    let mut offsets = Vec::new();
    for epoch in starts.chunks(per_epoch) {
        let offset = epoch[0] % seq as u32;
        let mut k: Vec<u32> = epoch
            .iter()
            .map(|&s| {
                assert_eq!(s % seq as u32, offset, "one offset per epoch");
                s / seq as u32
            })
            .collect();
        assert_ne!(k, (0..per_epoch as u32).collect::<Vec<_>>(), "shuffled");
        k.sort_unstable();
        assert_eq!(k, (0..per_epoch as u32).collect::<Vec<_>>());
        offsets.push(offset);
    }
    assert_eq!(
        b.cursor(),
        BatchCursor {
            epoch: 6,
            position: 98
        }
    );
    offsets.dedup();
    assert!(
        offsets.len() > 1,
        "offsets should vary between epochs: {offsets:?}"
    );
}

#[test]
fn same_seed_same_batches_other_seed_differs() {
    let tokens = positions(5000);
    let a = take(&mut Batcher::new(tokens.clone(), 8, 16, 3).unwrap(), 20);
    let b = take(&mut Batcher::new(tokens.clone(), 8, 16, 3).unwrap(), 20);
    let c = take(&mut Batcher::new(tokens, 8, 16, 4).unwrap(), 20);
    assert_eq!(a, b);
    assert_ne!(a[0], c[0]);
}

#[test]
fn order_depends_only_on_seed_and_epoch() {
    let tokens = positions(3000);
    // Straight through to epoch 2 (per epoch: 2999 / 32 = 93 fit, 92 kept; 46 batches of 2).
    let mut straight = Batcher::new(tokens.clone(), 2, 32, 11).unwrap();
    assert_eq!(straight.windows_per_epoch(), 92);
    take(&mut straight, 92);
    assert_eq!(
        straight.cursor(),
        BatchCursor {
            epoch: 1,
            position: 92
        }
    );
    let epoch2 = take(&mut straight, 46);
    // A fresh batcher told "epoch 2, position 0" yields the same epoch.
    let mut jumped = Batcher::new(tokens, 2, 32, 11).unwrap();
    jumped
        .resume(BatchCursor {
            epoch: 2,
            position: 0,
        })
        .unwrap();
    assert_eq!(take(&mut jumped, 46), epoch2);
    // Epochs differ from one another.
    let mut first = Batcher::new(positions(3000), 2, 32, 11).unwrap();
    assert_ne!(take(&mut first, 46), epoch2);
}

#[test]
fn resume_continues_exactly() {
    let tokens = positions(777);
    // 5 rows per batch over 47 windows: batches straddle epoch ends.
    let straight = take(&mut Batcher::new(tokens.clone(), 5, 16, 9).unwrap(), 50);
    for n in [0, 1, 9, 10, 31] {
        let mut first = Batcher::new(tokens.clone(), 5, 16, 9).unwrap();
        let mut got = take(&mut first, n);
        let json = serde_json::to_string(&first.cursor()).unwrap();
        let cursor: BatchCursor = serde_json::from_str(&json).unwrap();
        let mut second = Batcher::new(tokens.clone(), 5, 16, 9).unwrap();
        second.resume(cursor).unwrap();
        got.extend(take(&mut second, 50 - n));
        assert_eq!(got, straight, "resume after {n} batches");
    }
}

#[test]
fn bad_arguments_are_errors() {
    assert!(Batcher::new(positions(100), 0, 10, 1).is_err());
    assert!(Batcher::new(positions(100), 1, 0, 1).is_err());
    assert!(Batcher::new(positions(10), 1, 10, 1).is_err());
    let mut b = Batcher::new(positions(100), 1, 10, 1).unwrap();
    let too_far = BatchCursor {
        epoch: 0,
        position: b.windows_per_epoch() as u64 + 1,
    };
    assert!(b.resume(too_far).is_err());
    assert!(ValBatches::new(positions(5), 1, 5, None).is_err());
}

#[test]
fn validation_windows_are_fixed_and_limited() {
    // 103 tokens, seq_len 10: windows at 0, 10, ..., 90 (10 windows; the last ends at token 100).
    let all: Vec<Batch> = ValBatches::new(positions(103), 4, 10, None)
        .unwrap()
        .collect();
    assert_eq!(
        all.iter().map(|b| b.rows).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    let starts: Vec<u32> = all.iter().flat_map(row_starts).collect();
    assert_eq!(starts, (0..10).map(|k| k * 10).collect::<Vec<_>>());
    let again: Vec<Batch> = ValBatches::new(positions(103), 4, 10, None)
        .unwrap()
        .collect();
    assert_eq!(all, again);

    let limited = ValBatches::new(positions(103), 4, 10, Some(2)).unwrap();
    assert_eq!(limited.n_windows(), 8);
    assert_eq!(limited.len(), 2);
    let limited: Vec<Batch> = limited.collect();
    assert_eq!(limited[..], all[..2]);
}
