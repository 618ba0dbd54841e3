//! Decodes arbitrary bytes as a bytecode block. Errors are fine; panics are bugs.
//! A block has exactly one byte form, so whatever decodes must re-encode to exactly
//! the input bytes, and decoding the re-encoding gives the same block. Decoding under
//! tight limits agrees with the default limits: the same block, the same error, or an
//! error that is one of the limits. The limits are exact: the block's own size,
//! instruction count and longest name pass, one less fails with that limit.

#![no_main]

use amb_bytecode::{Block, BlockLimits, DecodeError, Target};
use libfuzzer_sys::fuzz_target;

/// Limits small enough that fuzz inputs hit each of them.
fn tight_limits() -> BlockLimits {
    BlockLimits {
        max_block_bytes: 1 << 10,
        max_instructions: 8,
        max_name_bytes: 6,
    }
}

fn is_limit(error: &DecodeError) -> bool {
    match error {
        DecodeError::TooLarge { .. } | DecodeError::TooManyInstructions { .. } => true,
        DecodeError::BadTarget { rule, .. } => rule.contains("max_name_bytes"),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let result = Block::decode(data);
    match (Block::decode_with_limits(data, &tight_limits()), &result) {
        (Ok(tight), Ok(block)) => assert_eq!(&tight, block, "tight limits changed the block"),
        (Err(tight), _) if is_limit(&tight) => {}
        (Err(tight), Err(error)) => assert_eq!(&tight, error, "tight limits changed the error"),
        (tight, _) => panic!("tight limits changed the outcome: {tight:?} vs {result:?}"),
    }

    let block = match result {
        Ok(block) => block,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let encoded = block.encode();
    assert_eq!(
        encoded, data,
        "a decoded block re-encodes to other bytes: {block:?}"
    );
    assert_eq!(Block::decode(&encoded).as_ref(), Ok(&block));
    // Each limit is exact: the block's own size, instruction count and longest name
    // pass, and one less fails with that limit.
    let default = BlockLimits::default();
    let count = block.instructions.len();
    let longest = block
        .instructions
        .iter()
        .filter_map(|i| match &i.target {
            Target::Name(name) => Some(name.len()),
            _ => None,
        })
        .max();
    let exact = BlockLimits {
        max_block_bytes: data.len(),
        max_instructions: count,
        max_name_bytes: longest.unwrap_or(0),
    };
    assert_eq!(
        Block::decode_with_limits(data, &exact).as_ref(),
        Ok(&block),
        "refused at its own size, count and name length"
    );
    let smaller = BlockLimits {
        max_block_bytes: data.len() - 1,
        ..default
    };
    assert!(matches!(
        Block::decode_with_limits(data, &smaller),
        Err(DecodeError::TooLarge { .. })
    ));
    let fewer = BlockLimits {
        max_instructions: count - 1,
        ..default
    };
    assert!(matches!(
        Block::decode_with_limits(data, &fewer),
        Err(DecodeError::TooManyInstructions { .. })
    ));
    if let Some(longest @ 1..) = longest {
        let shorter = BlockLimits {
            max_name_bytes: longest - 1,
            ..default
        };
        assert!(matches!(
            Block::decode_with_limits(data, &shorter),
            Err(ref e @ DecodeError::BadTarget { .. }) if is_limit(e)
        ));
    }

    // The accessors must not panic on any valid block.
    let _ = block.created_name();
    let _ = block.children().count();
    let _ = block.encode_with_cid();
    let _ = format!("{block:?}");
});
