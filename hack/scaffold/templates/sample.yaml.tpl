# A __Kind__ (crds/__plural__.yaml): the operator keeps a __ChildKind__ named after
# it, holding spec.template. Written by make new-kind.
apiVersion: __group__/__version__
kind: __Kind__
metadata:
  name: example
spec:
  template: __sampleTemplate__
