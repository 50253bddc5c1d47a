// Package audio is the gateway's pure DSP: G.711 µ-law and A-law, WAV files
// (read whole for prompts, written incrementally for recordings), tone and
// DTMF generation with levels in dBm0, and DTMF and energy detection on
// 8 kHz 16-bit linear frames. It imports nothing of ours (DESIGN §5) and
// nothing in it allocates per frame once constructed.
package audio

// SampleRate is the only rate the gateway's audio runs at (G.711, 8 kHz).
const SampleRate = 8000
