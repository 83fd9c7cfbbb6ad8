package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/profiles/api"
)

// Devices lists the device logins issued through the API.
func (c *Client) Devices(ctx context.Context) (out []api.Device, err error) {
	return out, c.Do(ctx, "GET", "/v1/devices", nil, &out)
}

// AddDevice adds a device login to the broker and returns its password,
// which is shown only this once.
func (c *Client) AddDevice(ctx context.Context, name string) (out api.IssuedDevice, err error) {
	return out, c.Do(ctx, "POST", "/v1/devices", api.DeviceRequest{Name: name}, &out)
}

// RemoveDevice removes a device login; its connections are closed.
func (c *Client) RemoveDevice(ctx context.Context, name string) error {
	return c.Do(ctx, "DELETE", "/v1/devices/"+url.PathEscape(name), nil, nil)
}

func devicesAdd(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "NAME")
	if err != nil {
		return err
	}
	d, err := c.AddDevice(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "device %s\npassword %s\n(shown once; the device logs in with it over MQTT or NATS and publishes under edge/v1/+/+/load/%s)\n", d.Name, d.Password, d.Name)
	return nil
}

func devicesList(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	ds, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tADDED")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\n", d.Name, d.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func devicesRemove(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "NAME")
	if err != nil {
		return err
	}
	if err := c.RemoveDevice(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "removed device %s; its connections are closed\n", name)
	return nil
}
