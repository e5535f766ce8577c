from slurmkit.config.sweep import Value, expand


def V(x):
    return Value(x, ())


def plain(combos):
    return [{k: v.value for k, v in c.items()} for c in combos]


def test_cartesian_product_in_file_order():
    assert plain(expand([("a", [V(1), V(2)]), ("b", [V("x"), V("y")])])) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_github_include_example():
    # The example of GitHub's documentation ("Expanding or adding matrix configurations").
    axes = [("fruit", [V("apple"), V("pear")]), ("animal", [V("cat"), V("dog")])]
    include = [{"color": V("green")}, {"color": V("pink"), "animal": V("cat")},
               {"fruit": V("apple"), "shape": V("circle")}, {"fruit": V("banana")},
               {"fruit": V("banana"), "animal": V("cat")}]
    assert plain(expand(axes, include)) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_exclude_partial_match_then_include():
    axes = [("os", [V("mac"), V("linux")]), ("v", [V(1), V(2)])]
    combos = expand(axes, include=[{"os": V("linux"), "v": V(1), "extra": V(True)}],
                    exclude=[{"os": V("mac")}])
    assert plain(combos) == [{"os": "linux", "v": 1, "extra": True}, {"os": "linux", "v": 2}]


def test_include_only_and_empty_matrix():
    assert plain(expand([], [{"a": V(1)}, {"a": V(2)}])) == [{"a": 1}, {"a": 2}]
    assert plain(expand([])) == [{}]


def test_values_keep_their_origin():
    combos = expand([("a", [Value(1, ("matrix", "a", 0))])], [{"b": Value(2, ("matrix", "include", 0, "b"))}])
    assert combos[0]["b"].origin == ("matrix", "include", 0, "b")


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

AXES = st.dictionaries(st.sampled_from("abcde"), st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
                       min_size=1, max_size=4)


@given(AXES, st.lists(st.dictionaries(st.sampled_from("abcdexy"), st.integers(0, 3), min_size=1, max_size=3),
                      max_size=3))
def test_properties(axes, excludes):
    excludes = [{k: v for k, v in e.items() if k in axes} for e in excludes]
    excludes = [e for e in excludes if e]
    combos = plain(expand([(k, [V(x) for x in vals]) for k, vals in axes.items()],
                          exclude=[{k: V(v) for k, v in e.items()} for e in excludes]))
    total = 1
    for vals in axes.values():
        total *= len(vals)
    assert len(combos) <= total and len({tuple(sorted(c.items())) for c in combos}) == len(combos)
    assert not any(all(c[k] == v for k, v in e.items()) for c in combos for e in excludes)
    if not excludes:
        assert len(combos) == total


def test_size_is_refused_before_expanding():
    import pytest

    from slurmkit.config.sweep import check_size
    from slurmkit.config.yamlsource import parse_yaml
    from slurmkit.errors import ConfigError

    doc = parse_yaml("repeats: 3\nmatrix:\n  a: [1, 2]\n", "e.yaml")
    axes = [("site", [V("s")]), ("a", [V(i) for i in range(1000)]), ("b", [V(i) for i in range(1000)])]
    with pytest.raises(ConfigError) as err:  # 10^6 x 3 points: refused without building one
        check_size(doc, axes, [{"c": V(1)}], [], repeats=3)
    assert err.value.lines()[0].startswith(
        "error: e.yaml:2:1: the sweep has 3,000,003 points ((sites 1 × a 1,000 × b 1,000 + include 1) × repeats 3),"
        " more than --max-points 100,000")
    check_size(doc, axes, [], [], repeats=3, max_points=3_000_000)  # the limit is the caller's
