//! ALSA (todo)
