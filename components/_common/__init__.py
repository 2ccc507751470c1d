"""Plain helpers the components' logic shares (datasets, policies, the registry, scoring, ...): no component, no kfp."""
