package appliance

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// httpHandler serves the operator endpoints: the REST API, metrics and
// web page (package profiles), with /readyz saying what serves.
func (a *Appliance) httpHandler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/readyz", func(c echo.Context) error {
		type device struct {
			Name     string `json:"name"`
			Memory   uint64 `json:"memoryBytes"`
			SMs      int    `json:"sms"`
			Emulated bool   `json:"emulated"`
		}
		var devs []device
		for _, d := range a.backend.Devices() {
			devs = append(devs, device{d.Name, d.TotalMem, d.SMs, d.Emulated})
		}
		return c.JSON(http.StatusOK, map[string]any{
			"status": "ready", "backend": a.kind, "devices": devs, "profile": a.node.sl.Status().Profile,
			"sessions": len(a.Sessions()), "isolation": a.cfg.Tenants.Isolation, "fingerprint": a.fp.String(),
		})
	})
	e.Any("/*", echo.WrapHandler(a.api))
	return e
}
