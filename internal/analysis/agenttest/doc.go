// Package agenttest holds the analysis providers' tests that need a real
// server, a real agent and the local fleet (the Job provider). They live
// apart from package analysis so that its unit tests and fuzz targets
// build without the server, the agent and client-go.
package agenttest
