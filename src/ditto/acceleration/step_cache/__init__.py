"""Step caching per request and per guidance pass (DBCache, TaylorSeer, static step masks), as a block-loop
feature (runtime.LoopFeature): `spec` parses the one spec string, `feature` is one loop's cache, `wiring`
the factory a pipeline runs each loop with. docs/architecture.md ("Step cache") says where it hooks in."""

from ditto.acceleration.step_cache.feature import StepCache
from ditto.acceleration.step_cache.spec import CacheSpec, check_cache_spec, parse_cache_spec
from ditto.acceleration.step_cache.wiring import StepCacheFeatures, install_step_cache, summary

__all__ = [
    "CacheSpec",
    "StepCache",
    "StepCacheFeatures",
    "check_cache_spec",
    "install_step_cache",
    "parse_cache_spec",
    "summary",
]
