package session

import (
	"fmt"
	"math"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// Resources are the pool capacities; 0 means bounded only by ports.
type Resources struct {
	RTP         int `yaml:"rtp"`
	EnhancedRTP int `yaml:"enhanced_rtp"`
	Conference  int `yaml:"conference"`
}

// ConferenceConfig is the yaml section `conference`.
type ConferenceConfig struct {
	Ptime  time.Duration `yaml:"ptime"`
	Codecs []string      `yaml:"codecs"`
	// MaxMembers bounds one conference's members (a stranger who learns a
	// conference's name cannot pile callers into it); the next join is
	// ResultCode 8. 0 = bounded only by the resource pools.
	MaxMembers int `yaml:"max_members"`
	// JoinTone plays a short rising tone to a conference when a member
	// joins, a falling one when one leaves (every conference; the CUAE
	// parameter SoundToneOnJoin asks for it per conference).
	JoinTone bool `yaml:"join_tone"`
	// TalkThreshold (dBm0) is the level above which a member is talking
	// (StartTalking / StopTalking, and who is mixed).
	TalkThreshold float64 `yaml:"talk_threshold"`
}

// Config is what the table needs from the gateway configuration.
type Config struct {
	Resources    Resources
	Conference   ConferenceConfig
	MediaTimeout time.Duration // 0 disables the media-timeout sweeper
	SRTP         string        // rtp.srtp: off | optional | required ("" = optional), for the SIP front's negotiation
	Media        MediaConfig   // media.*: prompts and recordings
	State        Persister     // where every change is queued for a restart (persist.go); nil = none
	Cluster      Cluster       // the cluster's registry (cluster.go); nil = standalone
	// IDStride and IDIndex make IDs unique in a cluster: the nth
	// ConnectionId or conference ID is n*IDStride+IDIndex (0: n).
	IDStride, IDIndex uint64
}

// DefaultResources are the built-in pool capacities (DESIGN §6).
func DefaultResources() Resources { return Resources{EnhancedRTP: 100} }

// DefaultConferenceConfig is the built-in `conference` section.
func DefaultConferenceConfig() ConferenceConfig {
	return ConferenceConfig{Ptime: 20 * time.Millisecond, Codecs: []string{"PCMU", "PCMA"}, TalkThreshold: -40}
}

// Validate reports the first bad value, naming its key.
func (r Resources) Validate() error {
	for _, kv := range []struct {
		key string
		v   int
	}{{"resources.rtp", r.RTP}, {"resources.enhanced_rtp", r.EnhancedRTP}, {"resources.conference", r.Conference}} {
		if kv.v < 0 {
			return fmt.Errorf("%s: must be >= 0, got %d", kv.key, kv.v)
		}
	}
	return nil
}

// Validate reports the first bad value, naming its key.
func (c ConferenceConfig) Validate() error {
	if c.Ptime < 10*time.Millisecond || c.Ptime > 60*time.Millisecond || c.Ptime%(10*time.Millisecond) != 0 {
		return fmt.Errorf("conference.ptime: must be 10ms, 20ms, ... 60ms, got %s", c.Ptime)
	}
	if len(c.Codecs) == 0 {
		return fmt.Errorf("conference.codecs: at least one codec is required")
	}
	if c.MaxMembers < 0 {
		return fmt.Errorf("conference.max_members: must be >= 0")
	}
	if c.TalkThreshold < -70 || c.TalkThreshold > 0 {
		return fmt.Errorf("conference.talk_threshold: %g dBm0 is outside -70..0", c.TalkThreshold)
	}
	for _, name := range c.Codecs {
		if !mixable(name) {
			return fmt.Errorf("conference.codecs: %q cannot be mixed (PCMU, PCMA)", name)
		}
	}
	return nil
}

// talkLevel is the mixer's talker threshold (mean absolute sample) for a
// level in dBm0: a sine's mean absolute value is 2/π of its peak. 0 (an
// unset config) is the mixer's default.
func (c ConferenceConfig) talkLevel() int {
	if c.TalkThreshold == 0 {
		return 0
	}
	return max(1, int(2/math.Pi*audio.Amplitude(c.TalkThreshold)))
}
