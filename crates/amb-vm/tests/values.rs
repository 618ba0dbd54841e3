//! Typed values (`spec/values.md`): every type and operation, the shapes that are not
//! values and why, the JSON forms, the issue's examples, deep terms, the spec's test
//! vectors and the normal forms of the shared corpus.

use amb_syntax::{Ast, parse};
use amb_vm::{
    MAX_VALUE_DEPTH, NotAValue, Reason, Type, Value, value_json, value_of, value_of_node,
};
use serde_json::json;

fn ast(text: &str) -> Ast {
    parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"))
}

fn eval(text: &str) -> Result<Value, NotAValue> {
    value_of(&ast(text))
}

#[track_caller]
fn value(text: &str) -> Value {
    eval(text).unwrap_or_else(|e| panic!("{text}: expected a value, got: {e}"))
}

#[track_caller]
fn json_text(text: &str) -> String {
    value(text).to_json().to_string()
}

#[track_caller]
fn no_value(text: &str) -> NotAValue {
    match eval(text) {
        Ok(v) => panic!("{text}: expected no value, got {v:?}"),
        Err(e) => e,
    }
}

/// The error's display, for exact comparison.
#[track_caller]
fn why(text: &str) -> String {
    no_value(text).to_string()
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

// ---------------------------------------------------------------- the issue's examples

#[test]
fn examples_of_the_issue() {
    assert_eq!(
        value("string[concat[left[string[hello[]]]|right[string[world[]]]]]"),
        s("helloworld")
    );
    assert_eq!(
        value("int[plus[left[int[1[]]]|right[int[2[]]]]]"),
        Value::Int(3)
    );
    assert_eq!(value("int[length[string[hello[]]]]"), Value::Int(5));
    assert_eq!(value("string[hello[]]"), s("hello"));
    assert_eq!(value("int[5[]]"), Value::Int(5));
    assert_eq!(
        value("string[concat[left[string[a[]]]|right[string[b[]]]]]"),
        s("ab")
    );

    let identity = ast("identity[int[length[string[hello[]]]]]");
    let e = value_of(&identity).unwrap_err();
    assert_eq!(
        e.reason(),
        &Reason::NotAType {
            name: "identity".into()
        }
    );
    assert_eq!(value_json(&identity), serde_json::Value::Null);
    let top = identity.roots().next().unwrap();
    let int = identity.children(Some(top)).next().unwrap();
    assert_eq!(value_of_node(&identity, int), Ok(Value::Int(5)));

    let e = no_value("string[hello[]|open_]");
    assert_eq!(
        e.to_string(),
        "string: holds the capability open_ so it is not a value"
    );
    assert_eq!(e.path(), ["string"]);
    assert_eq!(value_json(&ast("string[hello[]|open_]")), json!(null));
}

// ---------------------------------------------------------------------------- string

#[test]
fn strings() {
    assert_eq!(value("string[]"), s(""));
    assert_eq!(value("string[\"hello world\"[]]"), s("hello world"));
    assert_eq!(value("string[\"\"[]]"), s(""));
    assert_eq!(value("string[\"tab\\there\"[]]"), s("tab\there"));
    assert_eq!(value("string[42[]]"), s("42"));
    // A leaf is always text, even when it is named like an operation.
    assert_eq!(value("string[concat[]]"), s("concat"));
    assert_eq!(value("string[\"héllo\"[]]"), s("héllo"));
    // ("a" + "b") + "c" and "a" + ("b" + "c"), in any order of parts.
    assert_eq!(
        value(
            "string[concat[left[string[concat[left[string[a[]]]|right[string[b[]]]]]]|right[string[c[]]]]]"
        ),
        s("abc")
    );
    assert_eq!(
        value(
            "string[concat[right[string[concat[right[string[c[]]]|left[string[b[]]]]]]|left[string[a[]]]]]"
        ),
        s("abc")
    );
    assert_eq!(
        value("string[concat[left[string[]]|right[string[x[]]]]]"),
        s("x")
    );
}

#[test]
fn malformed_strings() {
    assert_eq!(
        why("string[a[]|b[]]"),
        "string: expected no part or one part (a literal or concat), found 2 parts"
    );
    assert_eq!(
        why("string[string[a[]]]"),
        "string: string[…] is not an operation of string; a string holds a literal n[] or concat[left[…]|right[…]]"
    );
    assert_eq!(
        why("string[concat[left[hello[]]|right[world[]]]]"),
        "string/concat/left: expected a value of type string (string[…]), found hello[]"
    );
    assert_eq!(
        why("string[concat[left[string[a[]]]|right[int[1[]]]]]"),
        "string/concat/right: expected a value of type string (string[…]), found int[…]"
    );
    assert_eq!(
        why("string[concat[left[string[a[]]]]]"),
        "string/concat: expected left and right, found left only"
    );
    assert_eq!(
        why("string[concat[right[string[a[]]]]]"),
        "string/concat: expected left and right, found right only"
    );
    assert_eq!(
        why("string[concat[left[string[a[]]]|left[string[b[]]]]]"),
        "string/concat: expected left and right, found left, left"
    );
    assert_eq!(
        why("string[concat[left[string[a[]]]|right[string[b[]]]|x[]]]"),
        "string/concat: expected left and right, found left, right, x"
    );
    assert_eq!(
        why("string[concat[x[]]]"),
        "string/concat: expected left and right, found x"
    );
    assert_eq!(
        why("string[concat[left[]|right[string[b[]]]]]"),
        "string/concat/left: expected one part (a typed value), found no part"
    );
    assert_eq!(
        why("string[concat[left[string[a[]]|string[c[]]]|right[string[b[]]]]]"),
        "string/concat/left: expected one part (a typed value), found 2 parts"
    );
    // A problem deep inside names the whole path.
    assert_eq!(
        why("string[concat[left[string[concat[left[string[a[]]]]]]|right[string[b[]]]]]"),
        "string/concat/left/string/concat: expected left and right, found left only"
    );
}

// ------------------------------------------------------------------------------- int

#[test]
fn ints() {
    assert_eq!(value("int[0[]]"), Value::Int(0));
    assert_eq!(value("int[-7[]]"), Value::Int(-7));
    assert_eq!(value("int[\"42\"[]]"), Value::Int(42));
    assert_eq!(value("int[9223372036854775807[]]"), Value::Int(i64::MAX));
    assert_eq!(value("int[-9223372036854775808[]]"), Value::Int(i64::MIN));
    assert_eq!(
        value("int[multiply[left[int[-4[]]]|right[int[plus[left[int[1[]]]|right[int[2[]]]]]]]]"),
        Value::Int(-12)
    );
    assert_eq!(
        value("int[plus[right[int[2[]]]|left[int[1[]]]]]"),
        Value::Int(3)
    );
    // length counts Unicode scalar values, bytes and list elements.
    assert_eq!(value("int[length[string[\"héllo\"[]]]]"), Value::Int(5));
    assert_eq!(value("int[length[string[]]]"), Value::Int(0));
    assert_eq!(
        value("int[length[string[concat[left[string[ab[]]]|right[string[c[]]]]]]]"),
        Value::Int(3)
    );
    assert_eq!(value("int[length[bytes[00ff10[]]]]"), Value::Int(3));
    assert_eq!(
        value(
            "int[length[list[cons[head[int[1[]]]|tail[list[cons[head[int[2[]]]|tail[list[]]]]]]]]]"
        ),
        Value::Int(2)
    );
    assert_eq!(
        value("int[plus[left[int[length[string[abc[]]]]]|right[int[1[]]]]]"),
        Value::Int(4)
    );
}

#[test]
fn malformed_ints() {
    assert_eq!(
        why("int[]"),
        "int: expected one part (a literal n[] or an operation), found no part"
    );
    assert_eq!(
        why("int[1[]|2[]]"),
        "int: expected one part (a literal n[] or an operation), found 2 parts"
    );
    assert_eq!(
        why("int[i1[]]"),
        "int: malformed int literal i1: expected decimal digits with an optional leading -"
    );
    assert_eq!(
        why("int[01[]]"),
        "int: malformed int literal 01: a leading zero is not allowed"
    );
    assert_eq!(
        why("int[-0[]]"),
        "int: malformed int literal -0: -0 is not allowed; write 0"
    );
    assert_eq!(
        why("int[\"+1\"[]]"),
        "int: malformed int literal \"+1\": expected decimal digits with an optional leading -"
    );
    assert_eq!(
        why("int[9223372036854775808[]]"),
        "int: malformed int literal 9223372036854775808: out of the int range (-9223372036854775808 to 9223372036854775807)"
    );
    assert_eq!(
        why("int[plus[left[int[1[]]]]]"),
        "int/plus: expected left and right, found left only"
    );
    assert_eq!(
        why("int[plus[left[int[9223372036854775807[]]]|right[int[1[]]]]]"),
        "int/plus: plus of 9223372036854775807 and 1 overflows the int range (i64)"
    );
    assert_eq!(
        why("int[multiply[left[int[9223372036854775807[]]]|right[int[2[]]]]]"),
        "int/multiply: multiply of 9223372036854775807 and 2 overflows the int range (i64)"
    );
    assert_eq!(
        why("int[multiply[left[int[-9223372036854775808[]]]|right[int[-1[]]]]]"),
        "int/multiply: multiply of -9223372036854775808 and -1 overflows the int range (i64)"
    );
    assert_eq!(
        why("int[minus[left[int[1[]]]|right[int[1[]]]]]"),
        "int: minus[…] is not an operation of int; an int holds a literal n[], plus[…], multiply[…] or length[…]"
    );
    assert_eq!(
        why("int[plus[left[float[1[]]]|right[int[1[]]]]]"),
        "int/plus/left: expected a value of type int (int[…]), found float[…]"
    );
    assert_eq!(
        why("int[length[int[5[]]]]"),
        "int/length: expected a string, bytes or list value, found int[…]"
    );
    assert_eq!(
        why("int[length[hello[]]]"),
        "int/length: expected a string, bytes or list value, found hello[]"
    );
    assert_eq!(
        why("int[length[]]"),
        "int: malformed int literal length: expected decimal digits with an optional leading -"
    );
    assert_eq!(
        why("int[length[string[a[]]|string[b[]]]]"),
        "int/length: expected one part (a typed value), found 2 parts"
    );
    // The operand is checked when it is evaluated.
    assert_eq!(
        why("int[length[string[a[]|b[]]]]"),
        "int/length/string: expected no part or one part (a literal or concat), found 2 parts"
    );
}

// ----------------------------------------------------------------------------- float

#[test]
fn floats() {
    assert_eq!(value("float[\"3.25\"[]]"), Value::Float(3.25));
    assert_eq!(value("float[3[]]"), Value::Float(3.0));
    assert_eq!(value("float[-2[]]"), Value::Float(-2.0));
    assert_eq!(value("float[1e-3[]]"), Value::Float(0.001));
    assert_eq!(value("float[\"1E+3\"[]]"), Value::Float(1000.0));
    assert_eq!(value("float[1e-999[]]"), Value::Float(0.0));
    let Value::Float(negative_zero) = value("float[-0[]]") else {
        panic!("not a float")
    };
    assert!(negative_zero == 0.0 && negative_zero.is_sign_negative());
    assert_eq!(
        value("float[plus[left[float[\"0.1\"[]]]|right[float[\"0.2\"[]]]]]"),
        Value::Float(0.1 + 0.2)
    );
    assert_eq!(
        value("float[multiply[left[float[\"1.5\"[]]]|right[float[-4[]]]]]"),
        Value::Float(-6.0)
    );
}

#[test]
fn malformed_floats() {
    for bad in [
        "\".5\"",
        "\"5.\"",
        "\"+1\"",
        "\"01.5\"",
        "inf",
        "NaN",
        "\"1.2.3\"",
        "1e",
        "x",
    ] {
        let e = no_value(&format!("float[{bad}[]]"));
        assert!(
            matches!(
                e.reason(),
                Reason::MalformedLiteral {
                    ty: Type::Float,
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        why("float[1e999[]]"),
        "float: the literal 1e999 is not a finite float"
    );
    assert_eq!(
        why("float[multiply[left[float[1e300[]]]|right[float[1e300[]]]]]"),
        "float/multiply: multiply of 1e+300 and 1e+300 is not a finite float"
    );
    assert_eq!(
        why("float[plus[left[int[1[]]]|right[float[1[]]]]]"),
        "float/plus/left: expected a value of type float (float[…]), found int[…]"
    );
    assert_eq!(
        why("float[length[string[a[]]]]"),
        "float: length[…] is not an operation of float; a float holds a literal n[], plus[…] or multiply[…]"
    );
}

// -------------------------------------------------------------- bool, bytes and char

#[test]
fn bools_bytes_chars() {
    assert_eq!(value("bool[true[]]"), Value::Bool(true));
    assert_eq!(value("bool[false[]]"), Value::Bool(false));
    assert_eq!(value("bytes[]"), Value::Bytes(vec![]));
    assert_eq!(value("bytes[\"\"[]]"), Value::Bytes(vec![]));
    assert_eq!(value("bytes[00ff[]]"), Value::Bytes(vec![0, 0xff]));
    assert_eq!(value("bytes[\"00ff\"[]]"), Value::Bytes(vec![0, 0xff]));
    assert_eq!(value("bytes[cafe[]]"), Value::Bytes(vec![0xca, 0xfe]));
    assert_eq!(
        value(
            "bytes[concat[left[bytes[01[]]]|right[bytes[concat[left[bytes[]]|right[bytes[0203[]]]]]]]]"
        ),
        Value::Bytes(vec![1, 2, 3])
    );
    assert_eq!(value("char[a[]]"), Value::Char('a'));
    assert_eq!(value("char[\"é\"[]]"), Value::Char('é'));
    assert_eq!(value("char[\" \"[]]"), Value::Char(' '));
    assert_eq!(value("char[\"\\n\"[]]"), Value::Char('\n'));
    assert_eq!(value("char[\"🦀\"[]]"), Value::Char('🦀'));
    assert_eq!(value("char[7[]]"), Value::Char('7'));
}

#[test]
fn malformed_bools_bytes_chars() {
    assert_eq!(
        why("bool[]"),
        "bool: expected one part (a literal n[]), found no part"
    );
    assert_eq!(
        why("bool[yes[]]"),
        "bool: malformed bool literal yes: expected true or false"
    );
    assert_eq!(
        why("bool[True[]]"),
        "bool: malformed bool literal True: expected true or false"
    );
    assert_eq!(
        why("bool[true[x[]]]"),
        "bool: true[…] is not an operation of bool; it has no operations, its literal is an empty ambient n[]"
    );
    assert_eq!(
        why("bool[true[]|false[]]"),
        "bool: expected one part (a literal n[]), found 2 parts"
    );
    assert_eq!(
        why("bytes[0[]]"),
        "bytes: malformed bytes literal 0: expected an even number of hex digits"
    );
    assert_eq!(
        why("bytes[FF[]]"),
        "bytes: malformed bytes literal FF: expected lower-case hex digits 0-9 a-f"
    );
    assert_eq!(
        why("bytes[zz[]]"),
        "bytes: malformed bytes literal zz: expected lower-case hex digits 0-9 a-f"
    );
    assert_eq!(
        why("bytes[concat[left[bytes[00[]]]|right[string[a[]]]]]"),
        "bytes/concat/right: expected a value of type bytes (bytes[…]), found string[…]"
    );
    assert_eq!(
        why("bytes[00[]|01[]]"),
        "bytes: expected no part or one part (a literal or concat), found 2 parts"
    );
    assert_eq!(
        why("char[]"),
        "char: expected one part (a literal n[]), found no part"
    );
    assert_eq!(
        why("char[\"\"[]]"),
        "char: malformed char literal \"\": expected exactly one Unicode scalar value"
    );
    assert_eq!(
        why("char[ab[]]"),
        "char: malformed char literal ab: expected exactly one Unicode scalar value"
    );
    // e + combining acute accent: one grapheme, two scalar values.
    assert!(matches!(
        no_value("char[\"e\\u{301}\"[]]").reason(),
        Reason::MalformedLiteral { ty: Type::Char, .. }
    ));
}

// ----------------------------------------------------------------------------- tuple

#[test]
fn tuples() {
    assert_eq!(value("tuple[]"), Value::Tuple(vec![]));
    assert_eq!(
        value("tuple[1[string[a[]]]|0[int[1[]]]]"),
        Value::Tuple(vec![Value::Int(1), s("a")])
    );
    let parts: Vec<String> = (0..12).rev().map(|i| format!("{i}[int[{i}[]]]")).collect();
    assert_eq!(
        value(&format!("tuple[{}]", parts.join("|"))),
        Value::Tuple((0..12).map(Value::Int).collect())
    );
    assert_eq!(
        value("tuple[0[tuple[0[bool[true[]]]]]|1[list[]]]"),
        Value::Tuple(vec![
            Value::Tuple(vec![Value::Bool(true)]),
            Value::List(vec![])
        ])
    );
}

#[test]
fn malformed_tuples() {
    assert_eq!(
        why("tuple[0[int[1[]]]|0[int[2[]]]]"),
        "tuple: index 0 appears more than once"
    );
    assert_eq!(
        why("tuple[0[int[1[]]]|2[int[2[]]]]"),
        "tuple: index 2 is out of range: a tuple of 2 part(s) has the indices 0 to 1"
    );
    assert_eq!(
        why("tuple[01[int[1[]]]]"),
        "tuple: tuple part 01[…] is not an index (0, 1, 2, … written in decimal)"
    );
    assert_eq!(
        why("tuple[x[int[1[]]]]"),
        "tuple: tuple part x[…] is not an index (0, 1, 2, … written in decimal)"
    );
    assert_eq!(
        why("tuple[-1[int[1[]]]]"),
        "tuple: tuple part -1[…] is not an index (0, 1, 2, … written in decimal)"
    );
    assert_eq!(
        why("tuple[0[]]"),
        "tuple/0: expected one part (a typed value), found no part"
    );
    assert_eq!(
        why("tuple[0[int[1[]]|int[2[]]]]"),
        "tuple/0: expected one part (a typed value), found 2 parts"
    );
    assert_eq!(
        why("tuple[0[hello[]]]"),
        "tuple/0/hello: hello is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
    );
    assert_eq!(
        why("tuple[0[int[x[]]]]"),
        "tuple/0/int: malformed int literal x: expected decimal digits with an optional leading -"
    );
}

// ------------------------------------------------------------------------------ list

#[test]
fn lists() {
    assert_eq!(value("list[]"), Value::List(vec![]));
    assert_eq!(
        value("list[cons[head[int[1[]]]|tail[list[]]]]"),
        Value::List(vec![Value::Int(1)])
    );
    assert_eq!(
        value("list[cons[tail[list[cons[head[string[b[]]]|tail[list[]]]]]|head[int[1[]]]]]"),
        Value::List(vec![Value::Int(1), s("b")])
    );
    // The list monoid, with cons lists inside, both associations.
    let one = "list[cons[head[int[1[]]]|tail[list[]]]]";
    let two = "list[cons[head[int[2[]]]|tail[list[cons[head[int[3[]]]|tail[list[]]]]]]]";
    let four = "list[cons[head[int[4[]]]|tail[list[]]]]";
    let expected = Value::List((1..=4).map(Value::Int).collect());
    assert_eq!(
        value(&format!(
            "list[concat[left[list[concat[left[{one}]|right[{two}]]]]|right[{four}]]]"
        )),
        expected
    );
    assert_eq!(
        value(&format!(
            "list[concat[left[{one}]|right[list[concat[left[{two}]|right[{four}]]]]]]"
        )),
        expected
    );
    // A cons whose tail is a concat.
    assert_eq!(
        value(&format!(
            "list[cons[head[int[0[]]]|tail[list[concat[left[{one}]|right[list[]]]]]]]"
        )),
        Value::List(vec![Value::Int(0), Value::Int(1)])
    );
    // Lists of lists, of mixed types.
    assert_eq!(
        value(&format!(
            "list[cons[head[{one}]|tail[list[cons[head[char[x[]]]|tail[list[]]]]]]]"
        )),
        Value::List(vec![Value::List(vec![Value::Int(1)]), Value::Char('x')])
    );
}

#[test]
fn malformed_lists() {
    assert_eq!(
        why("list[nil[]]"),
        "list: nil[] is not an operation of list; a list is list[], cons[head[…]|tail[list[…]]] or concat[left[list[…]]|right[list[…]]]"
    );
    assert_eq!(
        why("list[cons[head[int[1[]]]]]"),
        "list/cons: expected head and tail, found head only"
    );
    assert_eq!(
        why("list[cons[head[int[1[]]]|tail[int[2[]]]]]"),
        "list/cons/tail: expected a value of type list (list[…]), found int[…]"
    );
    assert_eq!(
        why("list[cons[head[x[]]|tail[list[]]]]"),
        "list/cons/head/x: x is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
    );
    assert_eq!(
        why("list[cons[head[int[1[]]|int[2[]]]|tail[list[]]]]"),
        "list/cons/head: expected one part (a typed value), found 2 parts"
    );
    assert_eq!(
        why("list[concat[left[list[]]|right[string[a[]]]]]"),
        "list/concat/right: expected a value of type list (list[…]), found string[…]"
    );
    assert_eq!(
        why("list[cons[head[int[1[]]]|tail[list[]]]|cons[head[int[2[]]]|tail[list[]]]]"),
        "list: expected no part or one part (cons or concat), found 2 parts"
    );
}

// ------------------------------------------------------------------ whole programs

#[test]
fn programs_and_capabilities() {
    let empty = no_value("");
    assert_eq!(empty.reason(), &Reason::EmptyProgram);
    assert!(empty.path().is_empty());
    assert_eq!(
        why("string[a[]] | string[b[]]"),
        "the program has 2 top-level parts; a value is exactly one ambient"
    );
    assert_eq!(
        why("open_"),
        "holds the capability open_ so it is not a value"
    );
    assert_eq!(
        why("string[a[]] | in b"),
        "holds the capability in b so it is not a value"
    );
    assert_eq!(
        why("a[] | b[c[out_ d]]"),
        "b/c: holds the capability out_ d so it is not a value"
    );
    assert_eq!(
        why("hello[]"),
        "hello: hello is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
    );
    assert_eq!(
        why("\"my type\"[]"),
        "\"my type\": \"my type\" is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
    );
    // A capability anywhere is reported before any shape problem.
    for text in [
        "int[plus[left[int[1[]]]|right[int[2[]]|in_ x]]]",
        "string[concat[left[string[a[]]]|right[string[b[]]]]|open_]",
        "list[cons[head[int[1[]]]|tail[list[]]]|in_]",
        "tuple[0[int[1[]]]|1[bool[true[open x.in y]]]]",
        "char[a[open_]]",
    ] {
        assert!(
            matches!(no_value(text).reason(), Reason::Capability { .. }),
            "{text}"
        );
    }
    assert_eq!(
        why("int[plus[left[int[1[]]]|right[int[2[]]|in_ x]]]"),
        "int/plus/right: holds the capability in_ x so it is not a value"
    );
    // A value inside a non-value part: value_of_node reads it.
    let program = ast("call[open_.in x] | string[hello[]]");
    assert!(value_of(&program).is_err());
    let string = program.roots().nth(1).unwrap();
    assert_eq!(value_of_node(&program, string), Ok(s("hello")));
    let call = program.roots().next().unwrap();
    assert_eq!(
        value_of_node(&program, call).unwrap_err().to_string(),
        "call: holds the capability open_ so it is not a value"
    );
}

#[test]
fn order_of_parts_and_canonical_form_do_not_matter() {
    for text in [
        "tuple[2[int[plus[right[int[2[]]]|left[int[1[]]]]]]|0[string[concat[right[string[b[]]]|left[string[a[]]]]]]|1[list[cons[tail[list[]]|head[bool[true[]]]]]]]",
        "list[concat[right[list[cons[head[int[2[]]]|tail[list[]]]]]|left[list[cons[tail[list[]]|head[int[1[]]]]]]]]",
    ] {
        let original = ast(text);
        let mut canonical = original.clone();
        canonical.canonicalize();
        assert_eq!(value_of(&original), value_of(&canonical), "{text}");
        assert!(value_of(&original).is_ok(), "{text}");
    }
}

// ---------------------------------------------------------------------- JSON forms

#[test]
fn json_forms_are_exactly_as_specified() {
    assert_eq!(json_text("string[\"hello world\"[]]"), r#""hello world""#);
    assert_eq!(
        json_text("string[\"quote\\\"back\\\\slash\"[]]"),
        r#""quote\"back\\slash""#
    );
    assert_eq!(
        json_text("int[-9223372036854775808[]]"),
        "-9223372036854775808"
    );
    assert_eq!(
        json_text("int[9223372036854775807[]]"),
        "9223372036854775807"
    );
    assert_eq!(json_text("int[3[]]"), "3");
    assert_eq!(json_text("float[3[]]"), "3.0");
    assert_eq!(json_text("bool[true[]]"), "true");
    assert_eq!(json_text("bool[false[]]"), "false");
    assert_eq!(json_text("bytes[00ff[]]"), r#"{"bytes":"00ff"}"#);
    assert_eq!(json_text("bytes[]"), r#"{"bytes":""}"#);
    assert_eq!(json_text("char[a[]]"), r#"{"char":"a"}"#);
    assert_eq!(json_text("char[\"é\"[]]"), r#"{"char":"é"}"#);
    assert_eq!(json_text("tuple[]"), r#"{"tuple":[]}"#);
    assert_eq!(
        json_text("tuple[1[string[a[]]]|0[int[1[]]]]"),
        r#"{"tuple":[1,"a"]}"#
    );
    assert_eq!(json_text("list[]"), "[]");
    assert_eq!(
        json_text(
            "list[cons[head[int[1[]]]|tail[list[cons[head[list[cons[head[bytes[0a[]]]|tail[list[]]]]]|tail[list[]]]]]]]"
        ),
        r#"[1,[{"bytes":"0a"}]]"#
    );
    // Bytes are lower-case hex whatever the value.
    assert_eq!(
        Value::Bytes((0..=255).collect()).to_json(),
        json!({"bytes": (0..=255u8).map(|b| format!("{b:02x}")).collect::<String>()})
    );
    assert_eq!(value_json(&ast("x[]")), json!(null));
}

#[test]
fn floats_print_as_specified() {
    // spec/values.md §5: positional for exponents -5..=15, otherwise d.ddde±X.
    let cases: &[(f64, &str)] = &[
        (3.0, "3.0"),
        (3.25, "3.25"),
        (0.1, "0.1"),
        (100.0, "100.0"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1e-5, "0.00001"),
        (1.2345e-5, "0.000012345"),
        (1e15, "1000000000000000.0"),
        (9.5e15, "9500000000000000.0"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (1e-6, "1e-6"),
        (1.5e-7, "1.5e-7"),
        (-1.5e-7, "-1.5e-7"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (0.1 + 0.2, "0.30000000000000004"),
    ];
    for &(f, text) in cases {
        assert_eq!(Value::Float(f).to_json().to_string(), text, "{f:?}");
    }
    assert_eq!(
        json_text("float[plus[left[float[\"0.1\"[]]]|right[float[\"0.2\"[]]]]]"),
        "0.30000000000000004"
    );
    assert_eq!(json_text("float[-0[]]"), "-0.0");
    assert_eq!(json_text("float[\"1e16\"[]]"), "1e+16");
}

// -------------------------------------------------------------------- deep terms

const DEEP: usize = 100_000;

#[test]
fn deep_left_nested_string_concat() {
    // ((("a" + "b") + "b") + …) + "b"
    let text = format!(
        "{}string[a[]]{}",
        "string[concat[left[".repeat(DEEP),
        "]|right[string[b[]]]]]".repeat(DEEP)
    );
    let program = ast(&text);
    assert!(program.depth() > 3 * DEEP);
    let mut expected = String::from("a");
    expected.push_str(&"b".repeat(DEEP));
    assert_eq!(value_of(&program), Ok(Value::String(expected)));
}

#[test]
fn deep_right_nested_string_concat() {
    // "b" + ("b" + (… + "a"))
    let text = format!(
        "{}string[a[]]{}",
        "string[concat[left[string[b[]]]|right[".repeat(DEEP),
        "]]]".repeat(DEEP)
    );
    let mut expected = "b".repeat(DEEP);
    expected.push('a');
    assert_eq!(eval(&text), Ok(Value::String(expected)));
    // And its length.
    let length = format!("int[length[{text}]]");
    assert_eq!(eval(&length), Ok(Value::Int(DEEP as i64 + 1)));
}

#[test]
fn deep_int_plus_and_bytes_concat() {
    let text = format!(
        "{}int[1[]]{}",
        "int[plus[left[".repeat(DEEP),
        "]|right[int[1[]]]]]".repeat(DEEP)
    );
    assert_eq!(eval(&text), Ok(Value::Int(DEEP as i64 + 1)));
    let text = format!(
        "{}bytes[ff[]]{}",
        "bytes[concat[left[bytes[00[]]]|right[".repeat(DEEP),
        "]]]".repeat(DEEP)
    );
    let mut expected = vec![0u8; DEEP];
    expected.push(0xff);
    assert_eq!(eval(&text), Ok(Value::Bytes(expected)));
}

#[test]
fn deep_list_spines() {
    // A cons list of DEEP elements.
    let text = format!(
        "{}list[]{}",
        "list[cons[head[int[7[]]]|tail[".repeat(DEEP),
        "]]]".repeat(DEEP)
    );
    assert_eq!(eval(&text), Ok(Value::List(vec![Value::Int(7); DEEP])));
    // A left-nested concat chain of one-element lists.
    let one = "list[cons[head[bool[true[]]]|tail[list[]]]]";
    let text = format!(
        "{}list[]{}",
        "list[concat[left[".repeat(DEEP),
        format!("]|right[{one}]]]").repeat(DEEP)
    );
    assert_eq!(eval(&text), Ok(Value::List(vec![Value::Bool(true); DEEP])));
}

#[test]
fn deep_errors_are_reported_without_recursion() {
    // A capability at the bottom of a deep term.
    let text = format!(
        "{}string[a[]|open_]{}",
        "string[concat[left[".repeat(DEEP),
        "]|right[string[b[]]]]]".repeat(DEEP)
    );
    let e = eval(&text).unwrap_err();
    assert_eq!(e.path().len(), 3 * DEEP + 1);
    assert_eq!(
        e.to_string(),
        "string/concat/left/string/concat/left/…(299989 more)…/concat/left/string/concat/left/string: holds the capability open_ so it is not a value"
    );
    // A shape problem at the bottom.
    let text = format!(
        "{}int[x[]]{}",
        "int[plus[left[".repeat(DEEP),
        "]|right[int[1[]]]]]".repeat(DEEP)
    );
    let e = eval(&text).unwrap_err();
    assert!(matches!(
        e.reason(),
        Reason::MalformedLiteral { ty: Type::Int, .. }
    ));
    assert_eq!(e.path().len(), 3 * DEEP + 1);
    // Tuples nested far past the value depth limit fail at the limit.
    let text = format!("{}tuple[]{}", "tuple[0[".repeat(DEEP), "]]".repeat(DEEP));
    let e = eval(&text).unwrap_err();
    assert_eq!(
        e.reason(),
        &Reason::TooDeep {
            limit: MAX_VALUE_DEPTH
        }
    );
}

#[test]
fn value_depth_limit() {
    let nested = |depth: usize, open: &str, close: &str, leaf: &str| {
        format!(
            "{}{leaf}{}",
            open.repeat(depth - 1),
            close.repeat(depth - 1)
        )
    };
    // Lists: list[cons[head[ … ]|tail[list[]]]] nests one level each.
    let list = |depth| {
        nested(
            depth,
            "list[cons[head[",
            "]|tail[list[]]]]",
            "list[cons[head[int[1[]]]|tail[list[]]]]",
        )
    };
    let deepest = value(&list(MAX_VALUE_DEPTH));
    let e = no_value(&list(MAX_VALUE_DEPTH + 1));
    assert_eq!(
        e.reason(),
        &Reason::TooDeep {
            limit: MAX_VALUE_DEPTH
        }
    );
    assert!(
        e.to_string()
            .ends_with("tuples and lists nest more than 32 deep (limit max_value_depth)")
    );
    // The deepest JSON reads back with serde_json's default limit.
    let json = deepest.to_json().to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        deepest.to_json()
    );

    let tuple = |depth| nested(depth, "tuple[0[", "]]", "tuple[0[int[1[]]]]");
    let deepest = value(&tuple(MAX_VALUE_DEPTH));
    assert!(matches!(
        no_value(&tuple(MAX_VALUE_DEPTH + 1)).reason(),
        Reason::TooDeep { .. }
    ));
    let json = deepest.to_json().to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        deepest.to_json()
    );

    // Chains of concat and cons build one list: no depth.
    let flat = format!(
        "{}list[]{}",
        "list[concat[left[".repeat(1000),
        "]|right[list[cons[head[int[1[]]]|tail[list[]]]]]]]".repeat(1000)
    );
    assert_eq!(eval(&flat), Ok(Value::List(vec![Value::Int(1); 1000])));
}

// ------------------------------------------------------------- spec test vectors

/// Every row of `spec/values.md` §7: the term's value prints as the listed JSON.
#[test]
fn spec_test_vectors() {
    let spec_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/values.md");
    let spec = std::fs::read_to_string(spec_path)
        .unwrap_or_else(|e| panic!("{spec_path} is missing: {e}"));
    let section = spec
        .split("## 7. Test vectors")
        .nth(1)
        .expect("spec/values.md has a section 7");
    let first_code = |cell: &str| -> String {
        let start = cell.find('`').expect("a code span") + 1;
        let end = start + cell[start..].find('`').expect("a closed code span");
        cell[start..end].replace("\\|", "|")
    };
    let mut checked = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        // Split on the cell separator `|` that is not escaped.
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(|ch| ch == '|' || ch == ' '))
            .collect();
        assert_eq!(cells.len(), 2, "row {line:?}");
        let term = first_code(cells[0]);
        let expected: serde_json::Value = serde_json::from_str(&first_code(cells[1]))
            .unwrap_or_else(|e| panic!("row {line:?}: bad JSON: {e}"));
        let program = ast(&term);
        assert_eq!(value_json(&program), expected, "{term}");
        assert_eq!(
            value_json(&program).to_string(),
            first_code(cells[1]),
            "{term}: printed form"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} test vectors found");
}

// ------------------------------------------------------------------ shared corpus

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// The corpus files whose single listed normal form is (or wraps) a primitive value
/// shape: the JSON of the whole normal form's value, and for a wrapper such as
/// `identity[…]` the JSON of its one part's value.
const CORPUS_VALUES: &[(&str, &str, Option<&str>)] = &[
    (
        "ambientsprotocol-ambients-reducer/__tests__/fixtures/001.reconstructed.amb",
        r#""helloworld""#,
        None,
    ),
    (
        "ambientsprotocol-ambients-reducer/__tests__/fixtures/002.reconstructed.amb",
        r#""hello""#,
        None,
    ),
    (
        "ambientsprotocol-ambients-reducer/__tests__/fixtures/003.reconstructed.amb",
        "5",
        None,
    ),
    (
        "ambientsprotocol-ambients-reducer/__tests__/fixtures/004.reconstructed.amb",
        "3",
        None,
    ),
    (
        "ambientsprotocol-encoding-examples/_extracted/README-inline-string-concat.amb",
        r#""helloworld""#,
        None,
    ),
    // `left[hello[]]`: the operand is not a typed string (spec §4 rule 2).
    (
        "ambientsprotocol-encoding-examples/_extracted/README@ab5e2f0-val1-val2-eval_a.amb",
        "null",
        None,
    ),
    (
        "ambientsprotocol-encoding-examples/_extracted/functors-README-final-value.amb",
        "null",
        Some("5"),
    ),
    (
        "ambientsprotocol-encoding-examples/_extracted/functors-README-inline.amb",
        "null",
        Some("5"),
    ),
    (
        "ambientsprotocol-encoding-examples/_extracted/monoids-README-final-value.amb",
        r#""helloworld""#,
        None,
    ),
    (
        "ambientsprotocol-encoding-examples/_extracted/monoids-README-inline.amb",
        r#""helloworld""#,
        None,
    ),
    (
        "ambientsprotocol-encoding-examples/_history/functors/identity-functor@12c7b71.amb",
        "null",
        Some("5"),
    ),
    (
        "ambientsprotocol-encoding-examples/_history/functors/identity-functor@19c1c6f.amb",
        "null",
        Some("5"),
    ),
    (
        "ambientsprotocol-encoding-examples/_history/monoids/simplest-monoid-construction@5e107b8.amb",
        r#""helloworld""#,
        None,
    ),
    (
        "ambientsprotocol-encoding-examples/functors/identity-functor.amb",
        "null",
        Some("5"),
    ),
    (
        "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb",
        r#""helloworld""#,
        None,
    ),
    (
        "ambientsprotocol-whitepaper/ch05/15-message-hello-composed.amb",
        "null",
        Some(r#""hello""#),
    ),
    (
        "ambientsprotocol-whitepaper/ch05/16-constant-function.amb",
        r#""hello""#,
        None,
    ),
    (
        "ambientsprotocol-whitepaper/ch05/21-value-string-hello.amb",
        r#""hello""#,
        None,
    ),
    // `string[hello[]|open_]`: not a value.
    (
        "ambientsprotocol-whitepaper/ch05/22-not-a-value.amb",
        "null",
        None,
    ),
    (
        "ambientsprotocol-whitepaper/ch05/24-value-a-plus-b.amb",
        r#""ab""#,
        None,
    ),
    (
        "ambientsprotocol-whitepaper/ch05/25-value-ab-plus-c.fixed.amb",
        r#""abc""#,
        None,
    ),
    (
        "ambientsprotocol-whitepaper/ch05/26-value-identity-functor-result.amb",
        "null",
        Some("5"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/abstractions/001-string_concat.ambient",
        r#""helloworld""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/001-constant_function.ambient",
        r#""hello""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/002-fcall_const_func.ambient",
        r#""hello""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/003-assign_fvar.ambient",
        r#""hello""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/004-assign_fvar_alias.ambient",
        r#""hello""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/005-return_ref_constant.ambient",
        r#""hello""#,
        None,
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/006-fcall_fcall.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/abstractions/001-string_concat.ambient",
        r#""helloworld""#,
        None,
    ),
    // `int[i1[]]`: `i1` is not an int literal (the reference reducer fails on it too).
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/abstractions/002-int_sum.ambient",
        "null",
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/001-constant_function.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/002-fcall_const_func.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/003-assign_fvar.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/004-assign_fvar_alias.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/005-return_ref_constant.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/006-fcall_fcall.ambient",
        r#""hello""#,
        None,
    ),
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/abstractions/001-string_concat.ambient",
        r#""helloworld""#,
        None,
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/abstractions/001-string_concat.ambient",
        r#""helloworld""#,
        None,
    ),
];

/// `(file, normal forms)` of every ROAM row of the corpus index.
fn corpus_roam_rows() -> Vec<(String, Vec<String>)> {
    let index = format!("{CORPUS}/INDEX.tsv");
    let text = std::fs::read_to_string(&index).unwrap_or_else(|e| {
        panic!("the shared corpus index {index} is missing ({e}); it must be at ../shared/corpus beside the repository")
    });
    let rows: Vec<(String, Vec<String>)> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.get(1) == Some(&"roam")).then(|| {
                let forms = cols
                    .get(3)
                    .map(|f| f.split(" ; ").map(str::to_owned).collect())
                    .unwrap_or_default();
                (cols[0].to_owned(), forms)
            })
        })
        .collect();
    assert!(
        rows.len() >= 100,
        "INDEX.tsv lists only {} ROAM files",
        rows.len()
    );
    rows
}

#[test]
fn corpus_normal_forms_have_the_expected_values() {
    let rows = corpus_roam_rows();
    let mut failures = Vec::new();
    for &(file, expected, inner) in CORPUS_VALUES {
        assert!(
            std::path::Path::new(&format!("{CORPUS}/{file}")).is_file(),
            "{file} is listed here but missing from the corpus"
        );
        let Some((_, forms)) = rows.iter().find(|(f, _)| f == file) else {
            failures.push(format!("{file}: not a ROAM row of INDEX.tsv"));
            continue;
        };
        let [form] = &forms[..] else {
            failures.push(format!(
                "{file}: {} normal forms, expected one",
                forms.len()
            ));
            continue;
        };
        let program = ast(form);
        let got = value_json(&program).to_string();
        if got != expected {
            failures.push(format!("{file}: {form} is {got}, expected {expected}"));
        }
        if let Some(inner) = inner {
            let top = program.roots().next().expect("one top-level part");
            let part = program.children(Some(top)).next().expect("one part");
            let got = value_of_node(&program, part)
                .map_or_else(|e| format!("no value ({e})"), |v| v.to_json().to_string());
            if got != inner {
                failures.push(format!(
                    "{file}: the part of {form} is {got}, expected {inner}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_other_corpus_normal_form_has_no_value() {
    // Completeness of CORPUS_VALUES: a single normal form whose top-level ambient is a
    // primitive type is listed; every normal form not listed has no value.
    let mut failures = Vec::new();
    let listed = |file: &str| CORPUS_VALUES.iter().any(|(f, _, _)| *f == file);
    for (file, forms) in corpus_roam_rows() {
        for form in &forms {
            let program = ast(form);
            let typed = program.roots().count() == 1
                && program
                    .roots()
                    .next()
                    .and_then(|top| program.node(top).name())
                    .is_some_and(|name| Type::from_name(program.name_text(name)).is_some());
            if forms.len() == 1 && typed && !listed(&file) {
                failures.push(format!(
                    "{file}: {form} is a typed value shape but not listed"
                ));
            }
            if !listed(&file) && value_of(&program).is_ok() {
                failures.push(format!("{file}: {form} has a value but is not listed"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
