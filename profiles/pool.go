package profiles

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kerf-edge/kerf/profiles/api"
)

// Pool is this node's membership of a pool of appliances. Its errors
// wrap ErrUnavailable (no quorum: 503), ErrOverLimit (403), ErrInUse (no
// room, or a member still live: 409) or ErrNotFound.
type Pool interface {
	Status() api.PoolStatus
	Join(address string) error
	Leave(node string) error
	Place(r api.PoolPlacementRequest) (api.PoolLease, error)
}

// ErrUnavailable is wrapped by errors of operations that need what is not
// there now, such as the pool's quorum.
var ErrUnavailable = errors.New("unavailable")

// ErrOverLimit is wrapped by errors of requests over a tenant's limit.
var ErrOverLimit = errors.New("over the limit")

func errNoPool() error {
	return problem(http.StatusConflict, "this node is not in a pool (pool.listen is empty; docs/pool.md)")
}

// poolProblem maps the pool's own errors; others go to toProblem.
func poolProblem(err error) error {
	switch {
	case errors.Is(err, ErrUnavailable):
		return problem(http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrOverLimit):
		return problem(http.StatusForbidden, err.Error())
	}
	return err
}

func (h handlers) GetPool(c echo.Context) error {
	if h.deps.Pool == nil {
		return errNoPool()
	}
	return c.JSON(http.StatusOK, h.deps.Pool.Status())
}

func (h handlers) JoinPool(c echo.Context) error {
	if h.deps.Pool == nil {
		return errNoPool()
	}
	var req api.PoolJoinRequest
	v, err := h.readBody(c, &req, nil, "")
	if err != nil {
		return err
	}
	if err := v.orNil(); err != nil {
		return err
	}
	if err := h.deps.Pool.Join(req.Address); err != nil {
		return poolProblem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) LeavePool(c echo.Context, node api.PoolNode) error {
	if h.deps.Pool == nil {
		return errNoPool()
	}
	if err := h.deps.Pool.Leave(node); err != nil {
		return poolProblem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) PlaceInPool(c echo.Context) error {
	if h.deps.Pool == nil {
		return errNoPool()
	}
	var req api.PoolPlacementRequest
	v, err := h.readBody(c, &req, nil, "")
	if err != nil {
		return err
	}
	if req.Fraction == 0 && req.MemoryBytes == 0 {
		v.add("fraction", "absent, as is memoryBytes: want either, or both")
	}
	if err := v.orNil(); err != nil {
		return err
	}
	l, err := h.deps.Pool.Place(req)
	if err != nil {
		return poolProblem(err)
	}
	return c.JSON(http.StatusCreated, l)
}
