package hub_test

import (
	"testing"

	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/hub/hubtest"
)

func TestMemoryConformance(t *testing.T) {
	h := hub.NewMemory(hub.Limits{})
	h.SetNode(3, "solo")
	hubtest.Run(t, []hubtest.Node{{Hub: h, Byte: 3}})
}
