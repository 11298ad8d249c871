package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sebelas/sebelas/internal/operator"
)

// startOperator serves an operator simulator (the top-up aggregator API) on
// a free loopback port for the topup function.
func (st *Stack) startOperator(cfg operator.SimConfig, log *slog.Logger) error {
	sim, err := operator.NewSimulator(cfg, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("operator simulator: %w", err)
	}
	st.Operator, st.OperatorURL = sim, "http://"+ln.Addr().String()
	st.operatorSrv = &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		if err := st.operatorSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operator simulator", "err", err)
		}
	}()
	return nil
}

func (st *Stack) stopOperator() error {
	if st.operatorSrv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return st.operatorSrv.Shutdown(ctx)
}
