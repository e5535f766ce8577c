import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmkit.config.yamlsource import parse_yaml
from slurmkit.errors import ConfigError


def test_positions_of_values_and_keys():
    doc = parse_yaml("a:\n  b: 1\n  c: [x, y]\n", "f.yaml")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert str(doc.location(("a", "b"))) == "f.yaml:2:6"
    assert str(doc.location(("a", "b"), key=True)) == "f.yaml:2:3"
    assert str(doc.location(("a", "c", 1))) == "f.yaml:3:10"
    assert str(doc.location(("a", "missing", "deeper"))) == "f.yaml:2:3"  # nearest existing ancestor


def test_python_tags_are_refused_before_construction():
    with pytest.raises(ConfigError) as err:
        parse_yaml("name: ok\nx: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "f.yaml")
    assert err.value.lines() == [
        "error: f.yaml:2:4: YAML tag !!python/object/apply:os.system is not allowed"
        " (hint: slurmkit reads plain YAML only; remove the tag)"]


def test_custom_tags_are_refused():
    with pytest.raises(ConfigError, match="YAML tag !custom is not allowed"):
        parse_yaml("a: !custom 1\n", "f.yaml")


def test_malformed_yaml_has_position():
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: [1, 2\nb: 3\n", "f.yaml")
    line = err.value.lines()[0]
    assert line.startswith("error: f.yaml:2:2: invalid YAML:"), line


def test_duplicate_keys_are_errors():
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert err.value.lines() == ["error: f.yaml:3:1: duplicate key 'a' (first at line 1) (hint: remove one of them)"]


def test_empty_document():
    assert parse_yaml("", "f.yaml").data is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_config_error(text):
    try:
        parse_yaml(text, "fuzz.yaml")
    except ConfigError:
        pass


def test_alias_expansion_is_bounded_before_composing():
    laughs = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n' + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcd", "bcde"))
    with pytest.raises(ConfigError) as err:
        parse_yaml(laughs, "f.yaml")  # 12,351 values before e's *d of 11,111 each: the 8th crosses 100,000
    assert str(err.value.problems[0].location) == "f.yaml:5:36" and "alias *d" in err.value.lines()[0]
    doc = parse_yaml("a: &a [1, 2]\nb: *a\nc: *a\n", "f.yaml")  # within the bound: shared as before
    assert doc.data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]} and str(doc.location(("c", 1))) == "f.yaml:1:11"


def test_control_characters_have_a_position():
    with pytest.raises(ConfigError) as err:
        parse_yaml("a: 1\nb: x\x07y\n", "f.yaml")
    assert err.value.lines()[0].startswith("error: f.yaml:2:5: control character U+0007 is not allowed")
