package server

// FrontState describes the front's connections (httpfront's Describe),
// for a test that lost one; "" without a front.
func FrontState(s *Server) string {
	if s.front == nil {
		return ""
	}
	return s.front.Describe()
}
