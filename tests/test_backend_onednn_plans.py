"""The plan cache every oneDNN primitive module keeps (``chainrule.backend._onednn.PlanCache``): a plan is made once
per problem, the least recently used is destroyed past the size, and a cached "no plan" (None) is kept but never
destroyed. Pure Python: it needs no oneDNN."""

from chainrule.backend._onednn import PlanCache


def test_a_plan_is_made_once_per_key_and_the_least_recently_used_goes_first():
    cache, destroyed = PlanCache(2), []
    made = []

    def make(name):
        def f():
            made.append(name)
            return f"plan {name}"
        return f

    assert cache.get_or_make("a", make("a"), destroyed.append) == "plan a"
    assert cache.get_or_make("b", make("b"), destroyed.append) == "plan b"
    assert cache.get_or_make("a", make("a again"), destroyed.append) == "plan a"  # a hit: "a" is now the newest
    cache.get_or_make("c", make("c"), destroyed.append)
    assert made == ["a", "b", "c"] and cache.created == 3
    assert destroyed == ["plan b"] and list(cache) == ["a", "c"]


def test_a_cached_none_is_a_hit_and_is_never_destroyed():
    cache, destroyed = PlanCache(1), []
    calls = []
    assert cache.get_or_make("ref", lambda: calls.append(1), destroyed.append) is None
    assert cache.get_or_make("ref", lambda: calls.append(2), destroyed.append) is None
    assert calls == [1]  # the answer "no plan" is cached too
    cache.get_or_make("next", lambda: "plan", destroyed.append)
    assert destroyed == [] and list(cache) == ["next"]
