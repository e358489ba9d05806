# kind __Kind__: begin
#
# The primary resource: list and watch for the informer, get for a fresh read.
- apiGroups: [__group__]
  resources: [__plural__]
  verbs: [get, list, watch]
# Status by server-side apply: a PATCH of the status subresource, never a PUT.
- apiGroups: [__group__]
  resources: [__plural__/status]
  verbs: [get, patch]
# Setting blockOwnerDeletion on the children needs update of the owner's
# finalizers where OwnerReferencesPermissionEnforcement is on.
- apiGroups: [__group__]
  resources: [__plural__/finalizers]
  verbs: [update]
# Its __ChildKind__: list/watch for the informer, create (POST: a name someone
# else's object holds answers 409 instead of being taken over), patch
# (server-side apply), get (whose a taken name is).
- apiGroups: ["__childGroup__"]
  resources: [__childPlural__]
  verbs: [get, list, watch, create, patch]
# kind __Kind__: end
