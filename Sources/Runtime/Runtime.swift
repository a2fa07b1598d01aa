// Runtime: state store and the create/start/kill/delete lifecycle.
