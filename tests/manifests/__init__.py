"""Validation and consistency tests of the manifests in knative/, eventing/, dapr-bindings/."""
