//! In-memory adapters of every port, honouring the same contracts as the real ones, plus a
//! scriptable fake payment gateway. Used by tests and by engineers swapping adapters.
