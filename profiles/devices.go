package profiles

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kerf-edge/kerf/profiles/api"
)

// Devices issues and removes the embedded broker's device logins. Add
// returns an error wrapping ErrExists for a name taken, Remove one
// wrapping ErrNotFound for an unknown name.
type Devices interface {
	Add(name string) (api.IssuedDevice, error)
	List() []api.Device
	Remove(name string) error
}

// errNoDevices answers the device endpoints of a kerfd without the
// embedded broker.
func errNoDevices() error {
	return problem(http.StatusConflict, "device logins need the embedded broker (ingest.enabled: true, ingest.broker.mode: embedded)")
}

func (h handlers) ListDevices(c echo.Context) error {
	if h.deps.Devices == nil {
		return errNoDevices()
	}
	out := h.deps.Devices.List()
	if out == nil {
		out = []api.Device{}
	}
	return c.JSON(http.StatusOK, out)
}

func (h handlers) AddDevice(c echo.Context) error {
	if h.deps.Devices == nil {
		return errNoDevices()
	}
	var req api.DeviceRequest
	v, err := h.readBody(c, &req, nil, "")
	if err != nil {
		return err
	}
	if err := v.orNil(); err != nil {
		return err
	}
	d, err := h.deps.Devices.Add(req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d)
}

func (h handlers) RemoveDevice(c echo.Context, device api.DeviceName) error {
	if h.deps.Devices == nil {
		return errNoDevices()
	}
	if err := h.deps.Devices.Remove(device); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
