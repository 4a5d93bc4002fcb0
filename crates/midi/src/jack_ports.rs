//! JACK (todo)
