package provisioner

import "github.com/labrunner/labrunner/provisioner/client"

// apiRoutes lists every /api/v1 endpoint; openapi_test.go checks that
// each appears in openapi.json.
func (s *Server) apiRoutes() []route {
	return []route{
		{"POST", "/api/v1/machines/register", accessPublic, s.register},
		{"GET", "/api/v1/machines", accessRead, s.listMachines},
		{"GET", "/api/v1/machines/{id}", accessRead, s.getMachine},
		{"POST", "/api/v1/machines/{id}/heartbeat", accessMachine, s.heartbeat},
		{"GET", "/api/v1/machines/{id}/directives", accessMachine, s.directives},
		{"POST", "/api/v1/machines/{id}/runs", accessMachine, s.reportRuns},
		{"POST", "/api/v1/machines/{id}/quarantine", accessAdmin, s.quarantineMachine},
		{"DELETE", "/api/v1/machines/{id}/quarantine", accessAdmin, s.unquarantineMachine},
		{"POST", "/api/v1/machines/{id}/reboot", accessAdmin, s.simpleDirectiveAction(client.DirectiveReboot, "reboot")},
		{"POST", "/api/v1/machines/{id}/drain", accessAdmin, s.simpleDirectiveAction(client.DirectiveDrain, "drain")},
		{"POST", "/api/v1/machines/{id}/assign", accessAdmin, s.assignMachine},
		{"GET", "/api/v1/pools", accessRead, s.listPools},
		{"GET", "/api/v1/pools/{poolId}", accessRead, s.getPool},
		{"PUT", "/api/v1/pools/{poolId}", accessAdmin, s.putPool},
		{"DELETE", "/api/v1/pools/{poolId}", accessAdmin, s.deletePool},
		{"GET", "/api/v1/pools/{poolId}/sizing", accessRead, s.sizing},
		{"GET", "/api/v1/pools/{poolId}/history", accessRead, s.getPoolHistory},
		{"GET", "/api/v1/machines/{id}/timeline", accessRead, s.getMachineTimeline},
		{"GET", "/api/v1/why", accessRead, s.getWhy},
		{"GET", "/api/v1/system", accessRead, s.getSystem},
		{"POST", "/api/v1/tokens", accessAdmin, s.createToken},
	}
}

// dashboardRoutes lists the dashboard's read-only HTML pages (dashboard.go);
// they are not part of the API, so openapi.json leaves them out.
func (s *Server) dashboardRoutes() []page {
	return []page{
		{"/dashboard", s.dashboardIndex},
		{"/dashboard/machines/{id}", s.dashboardMachine},
		{"/dashboard/pools/{poolId}", s.dashboardPoolHistory},
		{"/dashboard/machines/{id}/history", s.dashboardMachineHistory},
		{"/dashboard/why", s.dashboardWhy},
		{"/dashboard/map", s.dashboardMap},
	}
}
